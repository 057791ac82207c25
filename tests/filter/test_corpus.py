from tools.filter_eval import DEFAULT_CORPUS, MAX_FPR, MIN_RECALL, evaluate, load_corpus


def test_corpus_shape():
    records = load_corpus(DEFAULT_CORPUS)
    singles = [r for r in records if "text" in r]
    sequences = [r for r in records if "prompts" in r]
    attacks = [r for r in singles if r["label"] == "attack"]
    hard_negatives = [r for r in singles if r["label"] == "benign" and r.get("hard_negative")]
    assert len(singles) >= 300 and len(sequences) >= 20
    assert len(hard_negatives) >= len(attacks)
    assert {r["language"] for r in singles} >= {"en", "fr", "zh", "ja", "es", "de", "it"}


def test_recall_and_false_positive_targets():
    report = evaluate(load_corpus(DEFAULT_CORPUS))
    assert report.overall.recall >= MIN_RECALL
    assert report.overall.fpr <= MAX_FPR
