// Offline stand-in for require.js in the reveal.js decks of tutorial_lib.course.slides.
// nbconvert's deck template calls require(config, [reveal.js, notes.js], callback).
// This loads those scripts in order as plain <script> tags (each then defines its
// global: window.Reveal, window.RevealNotes) and calls back with the globals.
window.require = function (config, scripts, callback) {
  var globals = { "reveal.js": "Reveal", "notes.js": "RevealNotes" };
  var modules = [];
  (function load(index) {
    if (index === scripts.length) {
      callback.apply(null, modules);
      return;
    }
    var tag = document.createElement("script");
    tag.src = scripts[index];
    tag.onload = function () {
      modules.push(window[globals[scripts[index].split("/").pop()]]);
      load(index + 1);
    };
    document.head.appendChild(tag);
  })(0);
};
// Without network there is no MathJax: keep the deck's slide-change hook harmless.
window.MathJax = window.MathJax || {
  Hub: { getAllJax: function () { return []; }, Rerender: function () {} },
};
