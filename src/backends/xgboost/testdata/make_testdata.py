#!/usr/bin/python3
"""Writes the small XGBoost models used by xgboost_test.cc.

A regressor on scikit-learn's diabetes data (10 features, 8 trees of depth 3)
saved as UBJSON, JSON and the legacy binary format (.model), and regression_expected.json with three input rows
and the booster's predictions for them. Run with Debian's interpreter from
this directory: /usr/bin/python3 make_testdata.py
"""
import json

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_diabetes


def main():
    x, y = load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    booster = xgb.train({"max_depth": 3, "eta": 0.3, "objective": "reg:squarederror",
                         "nthread": 1, "seed": 0}, xgb.DMatrix(x, label=y), num_boost_round=8)
    booster.save_model("regression.ubj")
    booster.save_model("regression.json")
    booster.save_model("regression.model")  # legacy binary (XGBoost 1.7 warns)
    rows = x[:3]
    predictions = booster.inplace_predict(rows)
    with open("regression_expected.json", "w") as out:
        json.dump({"inputs": rows.tolist(), "outputs": [float(p) for p in predictions]}, out)
        out.write("\n")


if __name__ == "__main__":
    main()
