"""A printable proof of service hours (志愿服务证明), in zh-CN HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment

from api.domain import BEIJING

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_TEMPLATE = _ENV.from_string("""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>志愿服务证明 · {{ name }}</title>
<style>
  body { font: 18px/1.7 "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2rem auto;
         max-width: 42rem; padding: 0 1rem; color: #111; }
  h1 { text-align: center; letter-spacing: .3em; font-size: 1.8rem; }
  table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
  th, td { border: 1px solid #444; padding: .4rem .6rem; text-align: left; }
  .sum { font-size: 1.2rem; }
  .foot { margin-top: 2rem; text-align: right; }
  @media print { body { margin: 0 auto; } }
</style>
</head>
<body>
<h1>志愿服务证明</h1>
<p class="sum">兹证明志愿者 <strong>{{ name }}</strong>（手机 {{ phone }}）
在{{ district }}新时代文明实践志愿服务中，累计服务 <strong>{{ hours }}</strong> 小时，
星级：<strong>{{ star_name }}</strong>。</p>
{% if teams %}<p>所在队伍：{{ teams | join("、") }}</p>{% endif %}
<table>
<thead><tr><th>日期</th><th>内容</th><th>时长（小时）</th></tr></thead>
<tbody>
{% for line in lines %}
<tr><td>{{ line.date }}</td><td>{{ line.what }}</td><td>{{ line.hours }}</td></tr>
{% else %}
<tr><td colspan="3">暂无已审核的服务记录</td></tr>
{% endfor %}
</tbody>
</table>
<p>时长以活动签到、签退记录及经管理员审核的补录为准；星级按《中国注册志愿者管理办法》累计服务
100/300/600/1000/1500 小时认定为一至五星级。</p>
<p class="foot">{{ district }}新时代文明实践中心<br>出具日期：{{ issued }}</p>
</body>
</html>
""")


def certificate_html(record: dict[str, Any], *, district: str, phone: str, teams: list[str],
                     titles: dict[int, str]) -> str:
    """Render a volunteer's certificate from :func:`api.services.ledger.service_record`.

    Only approved lines are listed; every value is HTML-escaped.
    """
    lines = []
    for e in reversed(record["entries"]):
        if e["state"] != "approved":
            continue
        when = (e["decided_at"] or e["created_at"]).astimezone(BEIJING)
        what = titles.get(e["activity_id"], "") if e["activity_id"] else ""
        label = {"activity": "活动", "correction": "更正", "backfill": "补录"}[e["kind"]]
        lines.append({"date": f"{when:%Y-%m-%d}", "what": f"{label} {what}".strip(),
                      "hours": f"{e['hours']:g}"})
    return _TEMPLATE.render(
        name=record["name"], phone=phone, district=district, hours=f"{record['hours']:g}",
        star_name=record["star_name"], teams=teams, lines=lines,
        issued=f"{datetime.now(BEIJING):%Y年%m月%d日}")
