"""The operator console: read-only web pages the service serves on --console-port, every figure from
Shifu's own data (docs/console.md). Pages are built in the background (service/console/pages.py) and
served from memory, so a request costs a template render at most; charts are matplotlib SVG inlined in
the HTML and the only other file is the stylesheet: a page loads nothing from outside the process."""
