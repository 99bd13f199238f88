"""Retrieval of the candidate's words for a criterion: pgvector HNSW, cosine distance.

The HNSW index covers every candidate turn of every session; a query filtered to one session would
otherwise stop after ef_search index hits, most of them other sessions', and return too few rows.
`hnsw.iterative_scan` makes pgvector keep scanning until the filter is satisfied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection, transaction

from interviews.models import Turn

SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
MIN_SENTENCE_WORDS = 3
MAX_SENTENCE_CHARS = 240


@dataclass(frozen=True)
class RetrievedTurn:
    seq: int
    content: str
    distance: float


def candidate_turns_for_vector(*, session_id: int, vector: list[float], limit: int) -> list[RetrievedTurn]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            """
            SELECT seq, content, embedding <=> %s::vector AS distance
            FROM interviews_turn
            WHERE session_id = %s AND role = %s AND embedding IS NOT NULL
            ORDER BY embedding <=> %s::vector
            LIMIT %s
            """,
            [str(vector), session_id, Turn.Role.CANDIDATE, str(vector), limit],
        )
        rows = cursor.fetchall()
    # relaxed_order may return near-ties slightly out of order; the final order is exact.
    return sorted((RetrievedTurn(*row) for row in rows), key=lambda turn: turn.distance)


def evidence_sentences(text: str) -> list[str]:
    """Sentences of a turn that can serve as evidence: verbatim substrings of it, never rewritten."""
    sentences = []
    for part in SENTENCE_SPLIT.split(text):
        sentence = part.strip()
        if len(sentence.split()) < MIN_SENTENCE_WORDS:
            continue
        if len(sentence) > MAX_SENTENCE_CHARS:
            sentence = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0]
        sentences.append(sentence)
    return sentences
