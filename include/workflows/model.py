"""A small refund model on the customer features: logistic regression in numpy, no ML library."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import Output

FEATURES = ("orders", "spend", "tenure_days")


def train_refund_model(inputs, params, ds):
    """Fit P(refunded) on the features of the day; report accuracy and the rows trained on.

    :param params: ``epochs``, ``learning_rate``
    :return: the fitted weights (one row per feature, and the intercept) and the metrics
    """
    rows = inputs["features"]
    x = rows[list(FEATURES)].to_numpy(dtype="float64")
    y = rows["refunded"].to_numpy(dtype="float64")
    scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    x = np.column_stack([np.ones(len(x)), (x - x.mean(axis=0)) / scale])
    weights = np.zeros(x.shape[1])
    for _ in range(int(params.get("epochs", 500))):
        predicted = 1.0 / (1.0 + np.exp(-x @ weights))
        weights -= float(params.get("learning_rate", 0.5)) * x.T @ (predicted - y) / max(len(y), 1)
    predicted = 1.0 / (1.0 + np.exp(-x @ weights)) >= 0.5
    accuracy = float((predicted == (y == 1)).mean()) if len(y) else 0.0
    table = pd.DataFrame({"feature": ["intercept", *FEATURES], "weight": weights})
    return Output(table=table, metrics={"accuracy": round(accuracy, 4), "training_rows": len(y)})
