"""Split long text into segments for speech synthesis.

    from text_split import split_text
    segments = split_text(text, max_length=100, first_segment_max=None)

Boundaries, strongest first:
1. Paragraphs: a blank line, or a single newline after a sentence end, before a
   list item ("- ", "1. ", "（一）") or after a "# heading"; other single newlines
   are plain whitespace. Paragraphs are never merged.
2. Sentences: 。！？！？；…… ... and . ! ? (a Latin period only before whitespace or
   CJK). Closing quotes and brackets stay with their sentence. Short sentences
   of a paragraph are merged greedily up to max_length.
3. A longer sentence is cut at its last clause mark (，、；：,;: or a dash) that
   fits, else the last space, else between CJK characters, else after an
   abbreviation, and only then inside a Latin word (a hard cut).
Never cut: inside numbers (3.14, 1,000, 12:30, v1.2.3, 2024.05.01, $1,234.56,
50%), URLs, e-mail addresses, domains and file names; after Mr. Mrs. Ms. Dr.
Prof. St. vs. etc. e.g. i.e. No. (before a number) Fig. Inc. Ltd. Jr. Sr. or an
initial (J. R. R., U.S.A.) unless nothing but a hard cut is left.
Punctuation never forms a segment: it joins the word before it (closers, marks)
or after it (openers, currency signs). Text without any letter, digit or CJK
character ("...") comes back as one segment; blank text gives [].
A segment exceeds max_length only when it has no cut point at all: its letters
and digits all lie in one protected token (or it has just one), with the
punctuation attached to it.
first_segment_max ("fast start"): the first segment ends at the first clause or
sentence boundary within min(first_segment_max, max_length) characters; when
there is none it is packed like the others within that shorter limit.
Segments are text[a:b] for increasing spans with only whitespace between them
(split_spans gives the spans): nothing is dropped, duplicated or reordered.
Run ``python -m text_split --max-length 80 < file.txt`` to see a text's segments.
"""

from text_split.splitter import split_spans, split_text

__all__ = ["split_spans", "split_text"]
