"""Training: rewards (:mod:`regionreasoner.trainers.rewards`); data builders, SFT and GRPO come later.

Import-light: nothing here loads torch or TRL.
"""
