"""The console's pages, one module each: its handlers take the shared Site
(console/site.py) and the request; console/app.py routes to them."""
