from interviews.templatetags.interview_text import light_markup


def test_light_markup_makes_bold_and_paragraphs_and_escapes_everything_else():
    html = light_markup("**Scale**: 2M req/s\n\n<script>alert(1)</script> <b onclick=x>hi</b>")
    assert "<strong>Scale</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b onclick" not in html
    assert html.count("<p>") == 2
