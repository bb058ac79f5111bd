// Find help's map: the results' sites as markers (Leaflet, served by this app). Tiles only when
// the app is configured with a tile URL; otherwise a plain background and nothing fetched.
(function () {
  var box = document.getElementById("results-map");
  var data = document.getElementById("map-points");
  if (!box || !data || !window.L) return;
  var points = JSON.parse(data.textContent || "[]");
  if (!points.length) return;
  box.hidden = false;
  var tiles = box.getAttribute("data-tiles");
  var map = L.map(box, { scrollWheelZoom: false, keyboard: false, zoomControl: false,
    attributionControl: !!tiles });  // a picture beside the list: nothing in it takes focus
  if (tiles) {
    L.tileLayer(tiles, { attribution: box.getAttribute("data-attribution") || "", maxZoom: 19 }).addTo(map);
  }
  var bounds = [];
  points.forEach(function (p) {
    L.circleMarker([p.lat, p.lon], { radius: 8, color: "#1d4ed8", weight: 2, fillOpacity: 0.7, interactive: false })
      .addTo(map);
    bounds.push([p.lat, p.lon]);
  });
  map.fitBounds(bounds, { padding: [30, 30], maxZoom: 14 });
})();
