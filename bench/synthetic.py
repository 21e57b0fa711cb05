"""Generate realistic scripts of any size, and the replies that answer them."""

from __future__ import annotations

import yaml

# (type, extra keys, a valid reply); cycled to build a script of any length.
_KINDS: list[tuple[str, dict[str, object], str]] = [
    (
        "choice",
        {
            "options": [
                {
                    "value": "suv",
                    "label": {"en": "SUV X", "es": "SUV X"},
                    "synonyms": {"en": ["crossover"]},
                    "score": 10,
                },
                {"value": "sedan", "label": {"en": "Sedan S", "es": "Berlina S"}, "score": 5},
                {"value": "van", "label": {"en": "Van V", "es": "Furgoneta V"}},
            ]
        },
        "sedan",
    ),
    ("number", {"integer": True, "min": 0}, "25k"),
    ("yes_no", {}, "yes"),
    ("text", {"min_length": 2, "max_length": 200}, "I run a small bakery"),
    (
        "choice",
        {
            "multiple": True,
            "options": [
                {"value": "price", "label": {"en": "Price", "es": "Precio"}},
                {"value": "space", "label": {"en": "Space", "es": "Espacio"}},
                {"value": "safety", "label": {"en": "Safety", "es": "Seguridad"}},
            ],
        },
        "1, 3",
    ),
    ("email", {}, "ana@example.com"),
    ("phone", {}, "612 345 678"),
]


def script_yaml(questions: int) -> str:
    items = []
    for index in range(questions):
        kind, extra, _reply = _KINDS[index % len(_KINDS)]
        question: dict[str, object] = {
            "id": f"q{index}",
            "type": kind,
            "prompt": {
                "en": f"Question {index}: {{{{ lead.first_name }}}}?",
                "es": f"Pregunta {index}?",
            },
            "retry": {"en": "Please try again.", "es": "Inténtalo de nuevo."},
            **extra,
        }
        if kind == "number" and index + 2 < questions:
            question["next"] = [
                {"if": f"answers.q{index} >= 1000000", "goto": "disqualified"},
                {"goto": f"q{index + 1}"},
            ]
        items.append(question)
    rules = [
        {"if": f"answers.q{i} >= 10000", "points": 20, "reason": f"q{i} >= 10k"}
        for i in range(questions)
        if _KINDS[i % len(_KINDS)][0] == "number"
    ][:5]
    document = {
        "id": f"synthetic-{questions}",
        "name": f"Synthetic script with {questions} questions",
        "languages": ["en", "es"],
        "region": "ES",
        "lead_fields": ["first_name", "email"],
        "greeting": {"en": "Hi {{ lead.first_name }}!", "es": "¡Hola {{ lead.first_name }}!"},
        "questions": items,
        "scoring": rules,
        "outcomes": [
            {
                "id": "qualified",
                "min_score": 40,
                "qualified": True,
                "message": {"en": "Great, {{ lead.first_name }}!", "es": "¡Genial!"},
            },
            {
                "id": "disqualified",
                "qualified": False,
                "message": {"en": "Thanks.", "es": "Gracias."},
            },
            {"id": "nurture", "message": {"en": "Thanks!", "es": "¡Gracias!"}},
        ],
        "reminders": {"after": ["10m", "1d"]},
        "expiry": {"after": "7d"},
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def replies(questions: int) -> list[str]:
    return [_KINDS[index % len(_KINDS)][2] for index in range(questions)]
