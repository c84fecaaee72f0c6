// Marks spans of a model response (pre.model-response[data-label]) as hidden inputs of the form.
// Offsets count characters of the response's text, as the server stores it; end is exclusive.
// The last selection made inside a response is kept: typing a note moves the browser's selection
// into the note's box, and the span must still be the text the expert selected.
(function () {
  if (window.nightshiftSpans) return;
  window.nightshiftSpans = true;
  var pending = null;

  function responseOf(node) {
    var el = node && (node.nodeType === 1 ? node : node.parentElement);
    return el ? el.closest("pre.model-response[data-label]") : null;
  }

  function offsetIn(pre, container, offset) {
    var before = document.createRange();
    before.selectNodeContents(pre);
    before.setEnd(container, offset);
    return before.toString().length;
  }

  function show(text) {
    document.querySelectorAll("div.spans .selected").forEach(function (el) { el.textContent = text; });
  }

  document.addEventListener("selectionchange", function () {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    var range = selection.getRangeAt(0);
    var pre = responseOf(range.startContainer);
    if (!pre || pre !== responseOf(range.endContainer)) return;
    var text = range.toString();
    pending = {response: pre.dataset.label, start: offsetIn(pre, range.startContainer, range.startOffset),
               end: offsetIn(pre, range.endContainer, range.endOffset), text: text};
    show("Selected in response " + pending.response + ": “" + (text.length > 60 ? text.slice(0, 57) + "…" : text) + "”");
  });

  function addSpan(box, span, text) {
    var li = document.createElement("li");
    var excerpt = text.length > 60 ? text.slice(0, 57) + "…" : text;
    li.textContent = "Response " + span.response + " [" + span.start + "–" + span.end + "] " + span.type +
      (span.note ? ": " + span.note : "") + " “" + excerpt + "” ";
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = box.dataset.field;
    input.value = JSON.stringify(span);
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "unmark";
    remove.textContent = "remove";
    li.appendChild(input);
    li.appendChild(remove);
    box.querySelector("ol.marked").appendChild(li);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.matches("div.spans button.unmark")) {
      target.closest("li").remove();
      return;
    }
    if (!target.matches("div.spans button.mark")) return;
    var box = target.closest("div.spans");
    if (!pending || pending.end <= pending.start) {
      show("Select the text of a model response first.");
      return;
    }
    var note = box.querySelector("input.span-note");
    var span = {response: pending.response, start: pending.start, end: pending.end,
                type: box.querySelector("select.span-type").value};
    if (note.value.trim()) span.note = note.value.trim();
    addSpan(box, span, pending.text);
    note.value = "";
    pending = null;
    show("");
    window.getSelection().removeAllRanges();
  });
})();
