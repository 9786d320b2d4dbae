"""Hostile message texts for the formatted-text tests: each would run script if it got through.

Every vector that could execute calls ``alert`` or sets ``window.__xss``, so the
browser test can tell. test_markup.py feeds them to the renderer,
test_browser_markup.py through a real server into a real page.
"""

X = "window.__xss=1"

XSS_VECTORS = [
    # Raw HTML (the parser has raw HTML off; the sanitizer would drop it anyway).
    "<script>window.__xss=1</script>",
    "<SCRIPT SRC=//example.invalid/x.js></SCRIPT>",
    "**bold** <script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**x** <img src=x onerror=window.__xss=1>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"
    "</style></mglyph></table></mtext></math>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<iframe srcdoc='<script>parent.__xss=1</script>'></iframe>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">css</div>',
    "<!-- --><script>alert(1)</script><!-- -->",
    "<!--<img src=x onerror=alert(1)>-->",
    "<a href=javascript:alert(1)>click</a>",
    "<details open ontoggle=alert(1)>",
    "<object data=javascript:alert(1)></object>",
    "<embed src=javascript:alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    "<base href=javascript:alert(1)//>",
    # Event handlers on every allowed tag.
    "<p onclick=alert(1) onmouseover=alert(1)>p</p>",
    "<br onmouseover=alert(1)>",
    "<em onmouseover=alert(1)>em</em>",
    "<strong onmouseover=alert(1)>strong</strong>",
    "<del onmouseover=alert(1)>del</del>",
    "<code onmouseover=alert(1)>code</code>",
    "<pre onmouseover=alert(1)>pre</pre>",
    "<blockquote onmouseover=alert(1)>quote</blockquote>",
    "<ul onmouseover=alert(1)><li onmouseover=alert(1)>li</li></ul>",
    "<ol start=1 onmouseover=alert(1)><li>li</li></ol>",
    '<a href="https://example.com" onmouseover="alert(1)" style="position:fixed;inset:0">a</a>',
    # javascript:, vbscript:, data: in every Markdown link form.
    "[inline](javascript:alert(1))",
    "[angle](<javascript:alert(1)>)",
    '[titled](javascript:alert(1) "title")',
    "[ref][r]\n\n[r]: javascript:alert(1)",
    "[collapsed][]\n\n[collapsed]: javascript:alert(1)",
    "[shortcut]\n\n[shortcut]: javascript:window.__xss=1",
    "<javascript:alert(1)>",
    "[vb](vbscript:msgbox(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[data](data:text/html,<script>alert(1)</script>)",
    "<data:text/html,<script>alert(1)</script>>",
    "[mixed](JaVaScRiPt:alert(1))",
    "[spaced](java\tscript:alert(1))",
    "[encoded](&#106;avascript:alert(1))",
    "[hex](&#x6A;avascript:alert(1))",
    "[named](javascript&colon;alert(1))",
    "[pct](javascript%3Aalert(1))",
    "[nl](<java\nscript:alert(1)>)",
    "[escaped](javascript\\:alert(1))",
    "[file](file:///etc/passwd)",
    "![img](javascript:alert(1))",
    '![x](x "onerror=alert(1)")',
    "![x](https://example.invalid/x.png)",
    # Attribute injection via titles and URLs.
    '[t](https://example.com "a\\" onmouseover=\\"alert(1)")',
    "[t](https://example.com 'x\" onmouseover=\"alert(1)')",
    '[u](https://example.com/" onmouseover="alert(1))',
    '[u](<https://example.com/" onmouseover="alert(1)>)',
    # Nested Markdown tricks.
    "[**[x](javascript:alert(1))**](https://example.com)",
    "[a](https://example.com)(javascript:alert(1))",
    "> <script>alert(1)</script>\n> [q](javascript:alert(1))",
    "- <img src=x onerror=alert(1)>\n- [l](javascript:alert(1))",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`</code><img src=x onerror=alert(1)>`",
    "    <script>alert(1)</script>",
    "*<img src=x onerror=alert(1)>*",
    '<http://example.com/"onmouseover="alert(1)>',
    "<a@b.c?onmouseover=alert(1)>",
]

# Formatted texts that must show as formatting in the browser test.
FORMATTED = "**Formatting** works: _em_, ~~struck~~, `code`, [a link](https://example.com/docs)"
CODE_BLOCK = '```\nfor x in range(3):\n    print("<b>not bold</b>", x)\n```'
QUOTE = "> quoted line\n\nreply to it"
LIST = "- first item\n- second item\n\n1. one\n2. two"
