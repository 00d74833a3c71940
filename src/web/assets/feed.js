// The live escalation feed: follows the server-sent events of the list's
// data-stream. The server renders each item (escaped); EventSource
// reconnects by itself and sends the last event's id (its cursor), so the
// feed resumes where it was.
(function () {
  var feed = document.getElementById("feed");
  var status = document.getElementById("feed-status");
  if (!feed || !window.EventSource) return;
  var source = new EventSource(feed.dataset.stream);
  source.addEventListener("open", function () { status.textContent = "live"; });
  source.addEventListener("error", function () { status.textContent = "reconnecting"; });
  source.addEventListener("escalation", function (e) {
    var li = document.createElement("li");
    li.innerHTML = e.data;
    feed.insertBefore(li, feed.firstChild);
  });
  source.addEventListener("failed", function (e) {
    status.textContent = "stopped: " + e.data;
    source.close();
  });
})();
