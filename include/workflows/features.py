"""Customer features from cleaned orders and the customers snapshot: a pure function, no I/O."""

from __future__ import annotations

import pandas as pd


def customer_features(inputs, params, ds):
    """One row per customer of the current snapshot: their orders over the window.

    :param inputs: ``orders`` (cleaned, the last days), ``customers`` (the newest snapshot)
    :param params: ``min_orders``: keep customers with at least this many orders (0: all)
    :param ds: the day, ``YYYY-MM-DD``
    """
    orders, customers = inputs["orders"], inputs["customers"]
    per_customer = orders.groupby("customer_id").agg(
        orders=("order_id", "count"),
        spend=("amount", "sum"),
        refunded=("status", lambda s: bool((s == "refunded").any())),
    )
    features = customers[["customer_id", "country", "signup_date"]].merge(
        per_customer, left_on="customer_id", right_index=True, how="left"
    )
    features["orders"] = features["orders"].fillna(0).astype("int64")
    features["spend"] = features["spend"].astype("float64").fillna(0.0)
    features["refunded"] = features["refunded"].astype("boolean").fillna(False).astype(bool)
    signup = pd.to_datetime(features["signup_date"])
    features["tenure_days"] = (pd.Timestamp(ds) - signup).dt.days.astype("int64")
    kept = features[features["orders"] >= int(params.get("min_orders", 0))]
    return kept.drop(columns="signup_date").sort_values("customer_id").reset_index(drop=True)
