// The inpaint form's prompt templates: picking a language fills "replace R1 with a green star" in that language
// (the generator reads all six, docs/generation.md), with the selected region substituted.

export const LANGUAGES = [
  { code: "en", name: "English", dir: "ltr", template: "replace {region} with a green star" },
  { code: "zh", name: "中文", dir: "ltr", template: "把{region}换成一颗绿色的星星" },
  { code: "nl", name: "Nederlands", dir: "ltr", template: "vervang {region} door een groene ster" },
  { code: "fr", name: "Français", dir: "ltr", template: "remplace {region} par une étoile verte" },
  { code: "hi", name: "हिन्दी", dir: "ltr", template: "{region} को एक हरे तारे से बदलो" },
  { code: "fa", name: "فارسی", dir: "rtl", template: "{region} را با یک ستاره سبز جایگزین کن" },
];

export function templatePrompt(code, region) {
  const lang = LANGUAGES.find((l) => l.code === code) || LANGUAGES[0];
  return lang.template.replace("{region}", region || "R1");
}

/**
 * Wire the form: the language and region selects refill the prompt while it still holds a template (a prompt the
 * user edited is left alone).  `submit(region, prompt, seed)` is called on submit.
 */
export function setUpInpaint({ form, region, language, prompt, seed }, submit) {
  for (const lang of LANGUAGES) {
    language.append(new Option(lang.name, lang.code));
  }
  let filled = "";
  const refill = () => {
    if (prompt.value !== "" && prompt.value !== filled) return;
    filled = templatePrompt(language.value, region.value);
    prompt.value = filled;
    prompt.dir = LANGUAGES.find((l) => l.code === language.value)?.dir || "ltr";
  };
  language.addEventListener("change", () => {
    filled = prompt.value; // choosing a language is asking for its template, even over an edited prompt
    refill();
  });
  region.addEventListener("change", refill);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const s = seed.value.trim();
    submit(region.value, prompt.value.trim(), s === "" ? null : Number.parseInt(s, 10));
  });
  return {
    /** Offer these region ids (the ones on the displayed image). */
    setRegions(ids) {
      const keep = region.value;
      region.replaceChildren(...ids.map((id) => new Option(id, id)));
      if (ids.includes(keep)) region.value = keep;
      form.querySelector("button[type=submit]").disabled = ids.length === 0;
      refill();
    },
  };
}
