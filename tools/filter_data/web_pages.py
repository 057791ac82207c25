"""Hand-written rows again, as the web pages an agent fetches (train/dev augmentation).

Tool results and pasted pages are HTML: a doctype, a head with meta tags, navigation,
scripts, analytics comments, a menu hidden until clicked, alt texts and aria labels.
Hidden-HTML attacks live in that markup too, so a model that never sees ordinary pages
learns "markup means attack" (the committed weights of one retrain scored the plain
example.com page 0.99). Each row wrapped here keeps its label, family and split: the
page around a text does not decide whether the text is an attack.
"""

from __future__ import annotations

import html
import random
import re

WRAP_SHARE = 0.25  # of the hand-written rows, wrapped once each

_NAV = [
    '<nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/contact">Contact</a></nav>',
    '<header class="site-header"><a class="logo" href="/"><img src="/static/logo.svg" alt="Logo">'
    '</a><button class="menu-toggle" aria-label="Open menu">☰</button></header>',
    '<ul class="breadcrumbs"><li><a href="/">Start</a></li><li><a href="/blog">Blog</a></li></ul>',
    "",
]
_HIDDEN = [
    '<div id="mobile-menu" style="display:none"><a href="/shop">Shop</a><a href="/faq">FAQ</a></div>',
    '<span class="sr-only">Skip to content</span>',
    '<div class="cookie-banner" hidden>We use cookies to improve the site. '
    '<button aria-label="Accept cookies">OK</button></div>',
    "",
]
_HEAD_EXTRA = [
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<link rel="stylesheet" href="/static/site.css?v=42">',
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-XXXX"></script>',
    "<!-- Google Tag Manager --><script>(function(w){w.dataLayer=w.dataLayer||[];})(window);"
    "</script><!-- End Google Tag Manager -->",
    '<meta property="og:type" content="article">',
]
_FOOTER = [
    '<footer><p>© 2026 All rights reserved. <a href="/privacy">Privacy</a></p></footer>',
    '<footer class="footer"><small>Last updated 3 Dec 2026</small></footer><!-- /footer -->',
    '<script src="/static/app.min.js" defer></script>',
    "",
]


def _paragraphs(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"\n\s*\n|\n", text) if p.strip()]
    return parts or [text]


def as_web_page(text: str, rng: random.Random) -> str:
    """``text`` as the body of an ordinary page, with markup chosen by ``rng``."""
    title = html.escape(" ".join(text.split()[:6])[:60])
    body = "".join(
        f"<p>{html.escape(p)}</p>" if rng.random() < 0.8 else f"<div>{p}</div>"
        for p in _paragraphs(text)
    )
    head = "".join(rng.sample(_HEAD_EXTRA, rng.randint(0, 3)))
    doctype = "<!DOCTYPE html>" if rng.random() < 0.6 else ""
    lang = rng.choice(['<html lang="en">', "<html>", '<html lang="de">', '<html lang="fr">'])
    return (
        f'{doctype}{lang}<head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f"<body>{rng.choice(_NAV)}{rng.choice(_HIDDEN)}<main><h1>{title}</h1>{body}</main>"
        f"{rng.choice(_FOOTER)}</body></html>"
    )


def web_page_records(records: list[dict], seed: int) -> list[dict]:
    """A share of ``records`` wrapped as web pages (label, family and split kept)."""
    rng = random.Random(f"web/{seed}")
    out = []
    for r in records:
        if rng.random() < WRAP_SHARE:
            out.append({**r, "text": as_web_page(r["text"], rng), "encoding": "none"})
    return out
