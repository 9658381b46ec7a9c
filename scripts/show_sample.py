"""Print a recommendation response (POST /v1/recommendations with explain: true, on stdin) as a readable table."""

import json
import sys

body = json.load(sys.stdin)
explain = body.get("explain") or {}
sources = (explain.get("candidates") or {}).get("by_source")
print(f"user {body['user_id']}  model {body['model_version']}  total {body['stage_ms']['total']:.2f} ms  "
      f"candidates by source {sources}  degraded {body['degraded'] or 'none'}")
for item in body["items"]:
    price = "-" if item.get("price") is None else f"{item['price']:.2f}"
    km = "-" if item.get("distance_km") is None else f"{item['distance_km']:.1f} km"
    title = item.get("title") or item["item_id"]
    merchant = item.get("merchant_name") or item["merchant_id"]
    print(f"{item['rank']:>2}. {title[:34]:<34} {merchant[:22]:<22} {item.get('category', ''):<12} {price:>7} "
          f"{km:>8}  {'; '.join(item['reasons'])}")
