"""mailcore.bayes: training, untraining, scores, pruning and the saved state."""

from __future__ import annotations

import json

from mailcore.bayes import MAX_MESSAGE_TOKENS, Classifier, tokens
from mailcore.mime import parse_message


def message(subject: str, body: str, sender: str = "x@example.com") -> list[str]:
    raw = f"From: {sender}\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
    return tokens(parse_message(raw))


SPAM = [
    message("You won a prize", "Claim your prize now at http://claim.test/win, offer expires"),
    message(
        "Cheap pills", "Buy cheap pills now, no prescription http://pills.test/", "a@pills.test"
    ),
    message("Gagnez un iPhone", "Réclamez votre cadeau maintenant http://claim.test/fr"),
    message("Prize waiting", "Your prize is waiting, claim now"),
]
HAM = [
    message("Meeting notes", "Here are the notes of the meeting, the roadmap is updated"),
    message("Lunch tomorrow?", "Are you free for lunch tomorrow near the station?"),
    message("Compte rendu", "Voici le compte rendu de la réunion, le planning est à jour"),
    message("Re: the report", "I read the report, the figures of the meeting are right"),
]


def trained() -> Classifier:
    classifier = Classifier()
    for spam, ham in zip(SPAM, HAM, strict=True):
        classifier.train(spam, is_spam=True)
        classifier.train(ham, is_spam=False)
    return classifier


def test_tokens_cover_subject_text_sender_and_link_domains() -> None:
    found = message(
        "Réunion Lundi", "Voir https://Docs.Example.org/x et le planning", "b@mail.example.net"
    )

    assert "s:reunion" in found
    assert "s:lundi" in found
    assert "w:planning" in found
    assert "from:mail.example.net" in found
    assert "from:example.net" in found
    assert "url:docs.example.org" in found
    assert not any(token.startswith("w:https") for token in found)


def test_tokens_are_bounded() -> None:
    body = " ".join(f"word{n}" for n in range(50_000))
    assert len(message("s", body)) == MAX_MESSAGE_TOKENS


def test_an_untrained_classifier_does_not_know() -> None:
    assert Classifier().score(SPAM[0]) == 0.5


def test_spam_scores_high_and_ham_low() -> None:
    classifier = trained()

    spam = classifier.score(message("Claim your prize", "You won, claim now http://claim.test/x"))
    ham = classifier.score(
        message("Notes of the meeting", "The roadmap and the report are updated")
    )

    assert spam > 0.9
    assert ham < 0.1
    assert classifier.score(message("zzz", "qqq unknown words only")) == 0.5


def test_untraining_undoes_training() -> None:
    classifier = trained()
    before = classifier.to_dict()
    extra = message("Prize prize prize", "claim claim")

    classifier.train(extra, is_spam=True)
    classifier.untrain(extra, is_spam=True)

    assert classifier.to_dict() == before


def test_untraining_a_message_never_trained_does_not_go_negative() -> None:
    classifier = Classifier()
    classifier.untrain(SPAM[0], is_spam=True)
    assert classifier.to_dict() == {"version": 1, "spam": 0, "ham": 0, "tokens": {}}


def test_the_state_survives_json_and_scores_the_same() -> None:
    classifier = trained()
    probe = message("Claim the prize", "meeting notes and cheap pills")

    again = Classifier.from_dict(json.loads(json.dumps(classifier.to_dict())))

    assert again.to_dict() == classifier.to_dict()
    assert again.score(probe) == classifier.score(probe)


def test_a_malformed_state_gives_an_empty_classifier() -> None:
    assert Classifier.from_dict({"version": 99}).spam == 0
    bad = Classifier.from_dict(
        {"version": 1, "spam": -3, "ham": 2, "tokens": {"a": [1, -1], "b": [1, 2]}}
    )
    assert (bad.spam, bad.ham, bad.counts) == (0, 2, {"b": [1, 2]})


def test_rare_tokens_are_pruned_to_the_bound_deterministically() -> None:
    def fill() -> Classifier:
        classifier = Classifier(max_tokens=50)
        for n in range(40):
            classifier.train([f"w:common{n % 5}", f"w:rare{n}", f"w:rare{n}b"], is_spam=n % 2 == 0)
        return classifier

    one, two = fill(), fill()

    assert len(one.counts) <= 55  # pruned back to 50 each time it passes 55
    assert all(f"w:common{n}" in one.counts for n in range(5))  # the frequent ones are kept
    assert one.to_dict() == two.to_dict()


def test_training_order_fixes_the_result() -> None:
    assert trained().to_dict() == trained().to_dict()
