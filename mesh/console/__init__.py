"""The operator/tenant console: a static page (console.html) and the summary it shows."""
