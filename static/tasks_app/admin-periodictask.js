// django-celery-beat's periodic task form without its inline script (the Content-Security-Policy
// runs none): the crontab field's help shows the chosen crontab in words, as text.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("readable-crontabs");
  const select = document.getElementById("id_crontab");
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) {
    translation.style.display = "none";
  }
  if (!source || !select) {
    return;
  }
  const readable = JSON.parse(source.textContent) || {};
  const help = document.querySelector(".field-crontab .help");
  const words = document.createElement("div");
  words.className = "crontab-in-words";
  if (help) {
    help.append(words);
  }
  const show = () => {
    const text = readable[select.value];
    words.textContent = text ? `Translation: ${text}` : "";
  };
  select.addEventListener("change", show);
});
