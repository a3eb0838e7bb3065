"""A linear classifier on fixed descriptors, as Appendix B trains one on each target set.

The descriptors (:mod:`vgg_repro.evaluation.descriptors`) stay fixed (no fine-tuning);
a linear SVM per class against the rest (scikit-learn's ``SVC`` with a linear kernel)
is trained on the target set's training split, with its regularisation constant C
chosen by cross-validation on that split alone, and scored on its test split:

- single-label data (Caltech's case): the mean per-class accuracy (mean class recall,
  scikit-learn's ``balanced_accuracy_score``);
- multi-label data (VOC's case): the mean average precision over classes (mAP).

An image's labels are the class folders it is filed under: an image that belongs to
several classes is put (or linked) in each of their folders under the same file
name, and its rows are merged into one image with several labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vgg_repro.errors import ConfigError, DataError

__all__ = ["DEFAULT_CS", "fit_linear", "image_labels", "mean_class_accuracy", "transfer"]

# The C values cross-validation chooses from: 10^-2 to 10^3 (the paper does not say
# which it tried; on L2-normalised descriptors the useful range is wide).
DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def image_labels(
    files: Sequence[str], labels: Sequence[int], num_classes: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of a feature file grouped into images, with every label of each.

    ``files`` are ``CLASS/IMAGE`` paths; rows whose ``IMAGE`` part is the same are
    one image filed under several classes.

    Returns:
        ``targets`` (images x classes, bool), ``rows`` (the first row of each image in
        the feature file) and the image names.

    >>> t, rows, names = image_labels(["a/1.jpg", "b/1.jpg", "b/2.jpg"], [0, 1, 1], 2)
    >>> t.astype(int).tolist(), rows.tolist(), names
    ([[1, 1], [0, 1]], [0, 2], ['1.jpg', '2.jpg'])
    """
    index: dict[str, int] = {}
    rows: list[int] = []
    pairs: list[tuple[int, int]] = []
    for row, (path, label) in enumerate(zip(files, labels, strict=True)):
        name = path.split("/", 1)[1] if "/" in path else path
        if name not in index:
            index[name] = len(rows)
            rows.append(row)
        pairs.append((index[name], int(label)))
    targets = np.zeros((len(rows), num_classes), dtype=bool)
    for image, label in pairs:
        targets[image, label] = True
    return targets, np.asarray(rows), list(index)


def mean_class_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The mean over classes of each class's accuracy (recall), in percent.

    >>> round(mean_class_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])), 2)
    83.33
    """
    from sklearn.metrics import balanced_accuracy_score

    return 100.0 * float(balanced_accuracy_score(truth, predicted))


def fit_linear(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    folds: int = 5,
    seed: int = 0,
    jobs: int | None = None,
):
    """A linear SVM on ``features``, C chosen by cross-validation on them alone.

    Args:
        features: ``(N, D)`` descriptors of the training images.
        targets: class index per image ``(N,)``, or ``(N, classes)`` bool for
            multi-label data.
        cs: the values of C to choose from.
        folds: cross-validation folds (fewer when a class has fewer images).
        seed: shuffles the folds.
        jobs: processes for the cross-validation fits (scikit-learn's ``n_jobs``;
            ``None``: one). The result does not depend on it.

    Returns:
        The fitted classifier and a dict: ``C`` (the chosen C), ``cv_score`` (its
        mean cross-validated score, percent) and ``folds`` (the folds used).
    """
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    if not cs or any(not (isinstance(c, int | float) and c > 0) for c in cs):
        raise ConfigError(f"the values of C must be positive numbers; got {list(cs)}")
    # One linear SVM per class against the rest. libsvm's solver (SVC with a linear
    # kernel) rather than liblinear's (LinearSVC): on a few hundred L2-normalised
    # descriptors it takes about the same time at every C (0.41 s at C = 0.01, 0.45 s
    # at 1000 on the raw-pixel baseline of data/transfer), where liblinear took 0.23 s
    # and 19.8 s (measured).
    estimator = OneVsRestClassifier(SVC(kernel="linear"))
    grid = {"estimator__C": list(cs)}
    if targets.ndim == 2:  # multi-label: scored by average precision
        smallest = int(min(targets.sum(0).min(), (~targets).sum(0).min()))
        scoring, splitter = "average_precision", KFold
    else:
        smallest = int(np.bincount(targets).min()) if len(targets) else 0
        scoring, splitter = "balanced_accuracy", StratifiedKFold
    k = min(folds, smallest)
    if k < 2:
        raise DataError(
            "cross-validating C needs at least 2 training images of every class "
            f"(and, multi-label, 2 without it); the smallest class has {smallest}"
        )
    cv = splitter(k, shuffle=True, random_state=seed)
    search = GridSearchCV(estimator, grid, cv=cv, scoring=scoring, n_jobs=jobs)
    search.fit(features, targets)
    c = next(iter(search.best_params_.values()))
    return search.best_estimator_, {
        "C": float(c),
        "cv_score": 100.0 * search.best_score_,
        "folds": k,
    }


def transfer(
    train: dict,
    test: dict,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    folds: int = 5,
    seed: int = 0,
    jobs: int | None = None,
) -> dict:
    """Train the linear classifier on ``train``'s descriptors and score it on ``test``'s.

    ``train`` and ``test`` are what :func:`~vgg_repro.evaluation.descriptors.load_features`
    returns (``features``, ``files``, ``labels``, ``classes``); ``cs``, ``folds``,
    ``seed`` and ``jobs`` are :func:`fit_linear`'s.

    Returns:
        ``metric`` (``"mean_class_accuracy"`` or ``"mAP"``), ``value`` (percent),
        ``std_error`` (single-label: of the mean class accuracy, from each class's
        binomial error), ``per_class`` (class -> accuracy or AP, percent), ``C``,
        ``cv_score``, ``folds``, ``n_train``, ``n_test``, ``num_classes``, ``dim``,
        ``multi_label``; single-label also ``correct`` (per test image, bool) and
        ``test_files``.

    Raises:
        DataError: the test split has a class with no training image, or the two
            feature files have descriptors of different widths.
    """
    classes = list(train["classes"])
    missing = sorted(set(test["classes"]) - set(classes))
    present = set(np.asarray(train["labels"]).tolist())
    empty = [c for i, c in enumerate(classes) if i not in present and c in test["classes"]]
    if missing or empty:
        absent = missing + empty
        raise DataError(
            f"the test set has {len(absent)} classes that the training set lacks "
            f"(first: {absent[:5]}): a linear classifier can only predict classes it "
            "was trained on; add training images of them or drop them from the test set"
        )
    x_train, x_test = np.asarray(train["features"]), np.asarray(test["features"])
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(
            f"the training descriptors have {x_train.shape[1]} dimensions and the test "
            f"descriptors {x_test.shape[1]}: describe both splits with the same nets and scales"
        )
    remap = np.array([classes.index(c) for c in test["classes"]])
    test_labels = remap[np.asarray(test["labels"], dtype=int)]
    t_train, r_train, _ = image_labels(train["files"], train["labels"], len(classes))
    t_test, r_test, names = image_labels(test["files"], test_labels, len(classes))
    multi = bool(t_train.sum(1).max() > 1 or t_test.sum(1).max() > 1)
    y_train = t_train if multi else t_train.argmax(1)
    model, chosen = fit_linear(x_train[r_train], y_train, cs=cs, folds=folds, seed=seed, jobs=jobs)
    result = chosen | {
        "n_train": len(r_train),
        "n_test": len(r_test),
        "num_classes": len(classes),
        "dim": int(x_train.shape[1]),
        "multi_label": multi,
    }
    if multi:
        from sklearn.metrics import average_precision_score

        scores = model.decision_function(x_test[r_test])
        ap = [
            100.0 * float(average_precision_score(t_test[:, c], scores[:, c]))
            if t_test[:, c].any()
            else None
            for c in range(len(classes))
        ]
        values = [a for a in ap if a is not None]
        return result | {
            "metric": "mAP",
            "value": float(np.mean(values)),
            "std_error": None,
            "per_class": dict(zip(classes, ap, strict=True)),
        }
    truth, predicted = t_test.argmax(1), model.predict(x_test[r_test])
    recall, errors = {}, []
    for c, name in enumerate(classes):
        mask = truth == c
        if mask.any():
            p = float((predicted[mask] == c).mean())
            recall[name] = 100.0 * p
            errors.append(p * (1 - p) / int(mask.sum()))
        else:
            recall[name] = None
    return result | {
        "metric": "mean_class_accuracy",
        "value": mean_class_accuracy(truth, predicted),
        "std_error": 100.0 * math.sqrt(sum(errors)) / len(errors),
        "per_class": recall,
        "correct": (predicted == truth).tolist(),
        "test_files": [test["files"][r] for r in r_test],
    }
