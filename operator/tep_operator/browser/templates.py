"""The pages' Jinja2 templates (autoescaped). Kept in Python so they ship with the package as code does."""

# ruff: noqa: E501  (HTML lines are as long as their markup)

BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · tep reports</title>
<style>
:root{--pass:#2e7d32;--xpass:#81c784;--fail:#c62828;--error:#6a1b9a;--flaky:#f9a825;--skip:#9e9e9e;--none:#eceff1;
--ink:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
header.top{background:#24292f;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
header.top a{color:#fff;text-decoration:none;font-weight:600}
header.top nav a{font-weight:400;color:#d0d7de;margin-right:16px}
main{padding:16px 24px 48px;max-width:1600px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
a{color:#0969da}
.muted{color:var(--muted)}
table{border-collapse:collapse}
table.list{width:100%}
table.list th,table.list td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle;white-space:nowrap}
table.list th{background:var(--bg);font-weight:600;font-size:13px}
table.list td.num,table.list th.num{text-align:right}
tr.red td:first-child{box-shadow:inset 4px 0 0 var(--fail)}
tr.green td:first-child{box-shadow:inset 4px 0 0 var(--pass)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.Passed,.passed{background:var(--pass)}.xpassed{background:var(--xpass)}.Failed,.failed{background:var(--fail)}
.Error,.error{background:var(--error)}.flaky{background:var(--flaky)}
.skipped,.xfailed{background:var(--skip)}.absent{background:var(--none)}.Running{background:#1565c0}
.cells{display:flex;gap:2px}
.cells a,.cells span{display:block;width:14px;height:18px;border-radius:2px}
table.grid{font-size:12px}
table.grid th,table.grid td{padding:0;border:1px solid #fff}
table.grid td.name{padding:2px 10px 2px 4px;white-space:nowrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;max-width:520px;overflow:hidden;text-overflow:ellipsis}
table.grid td.cell a,table.grid td.cell span{display:block;width:22px;height:20px}
table.grid th.run{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:400;padding:4px 0;height:92px;font-size:11px}
table.grid tr:hover td.name{background:#fff8c5}
.legend span.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin:0 4px 0 12px}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.plots figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:4px}
.plots svg{width:640px;height:260px}
.spark svg{width:120px;height:28px;display:block}
.pygal-sparkline path.line{fill:none;stroke:#1565c0;stroke-width:1.5}
.pygal-sparkline rect.background{fill:transparent}
.rank{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.rank section{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.rank h3{margin:0 0 2px;font-size:15px}
.rank p.def{margin:0 0 6px;font-size:12px;color:var(--muted)}
.rank ol{margin:0;padding-left:20px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.rank li{margin:2px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.facts{display:flex;gap:32px;flex-wrap:wrap;margin:8px 0}
.facts div b{display:block;font-size:20px}
.facts div{color:var(--muted)}.facts div b{color:var(--ink)}
pre.msg{background:#fff5f5;border-left:3px solid var(--fail);padding:6px 10px;margin:2px 0 10px;white-space:pre-wrap;font-size:12px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
form.filter input{padding:4px 8px;border:1px solid var(--line);border-radius:4px}
</style></head>
<body><header class="top"><a href="/">tep reports</a>
<nav><a href="/">Plans</a><a href="/api/plans">JSON API</a></nav></header>
<main>{% block main %}{% endblock %}</main></body></html>
"""

PLANS = """{% extends "base.html" %}{% block title %}Plans{% endblock %}{% block main %}
<h1>Plans</h1>
<div class="facts">
<div><b>{{ total }}</b>plans</div>
<div><b style="color:var(--fail)">{{ red }}</b>red now</div>
<div><b style="color:var(--pass)">{{ total - red }}</b>green (or no run yet)</div>
</div>
<form class="filter" method="get" action="/"><input name="q" value="{{ q }}" placeholder="filter: namespace/plan">
{% if ns %}<input type="hidden" name="ns" value="{{ ns }}">{% endif %}</form>
<p class="muted">Red plans first, the longest red on top. Recent runs: newest on the left; each cell opens that run.</p>
<table class="list"><tr><th>Plan</th><th>Last result</th><th>Since</th><th>Last passed</th>
<th>Recent runs</th><th class="num">Pass rate</th><th>Duration</th><th class="num">Runs</th></tr>
{% for p in plans %}
<tr class="{{ 'red' if p.red else 'green' }}">
<td><a href="/?ns={{ p.namespace }}" class="muted">{{ p.namespace }}</a> / <a href="{{ plan_url(p) }}"><b>{{ p.plan }}</b></a></td>
<td>{% if p.last %}<span class="badge {{ p.last.result }}">{{ p.last.result }}</span>{% else %}<span class="muted">no run yet</span>{% endif %}
{% if p.in_progress %} <span class="badge Running">running</span>{% endif %}</td>
<td>{% if p.red %}red since {{ ago(p.red_since) }} ({{ p.red_runs }} run{{ 's' if p.red_runs != 1 }})<br><small class="muted">{{ stamp(p.red_since) }}</small>{% elif p.last %}<span class="muted">passing</span>{% endif %}</td>
<td>{% if p.last_passed %}{{ ago(p.last_passed) }}<br><small class="muted">{{ stamp(p.last_passed) }}</small>{% else %}<span class="muted">never</span>{% endif %}</td>
<td><div class="cells">{% for run_id, result, start in p.cells %}<a class="{{ result }}" href="{{ plan_url(p) }}/runs/{{ run_id }}" title="{{ run_id }}: {{ result }}"></a>{% endfor %}</div></td>
<td class="num">{% if p.pass_rate is not none %}{{ (p.pass_rate * 100) | round | int }}%{% endif %}</td>
<td class="spark">{{ spark(p.durations) | safe }}</td>
<td class="num">{{ p.runs }}</td></tr>
{% else %}<tr><td colspan="8" class="muted">No plans under {{ root }} yet: run one (tep run --local -f PLAN.yaml) and reload.</td></tr>
{% endfor %}</table>
{% if pages > 1 %}<p>Page {{ page }} of {{ pages }}:
{% for n in range(1, pages + 1) %}{% if n == page %}<b>{{ n }}</b>{% else %}<a href="?page={{ n }}&amp;q={{ q | urlencode }}&amp;ns={{ ns | urlencode }}">{{ n }}</a>{% endif %} {% endfor %}</p>{% endif %}
{% endblock %}"""

PLAN = """{% extends "base.html" %}{% block title %}{{ ns }}/{{ plan }}{% endblock %}{% block main %}
<p class="muted"><a href="/">Plans</a> / <a href="/?ns={{ ns }}">{{ ns }}</a></p>
<h1>{{ plan }} {% if s.last %}<span class="badge {{ s.last.result }}">{{ s.last.result }}</span>{% endif %}</h1>
<div class="facts">
<div><b>{% if s.red %}{{ ago(s.red_since) }}{% elif s.last %}passing{% else %}-{% endif %}</b>{% if s.red %}red since {{ stamp(s.red_since) }} ({{ s.red_runs }} runs){% else %}state{% endif %}</div>
<div><b>{% if s.last_passed %}{{ ago(s.last_passed) }}{% else %}never{% endif %}</b>last passed</div>
<div><b>{% if s.pass_rate is not none %}{{ (s.pass_rate * 100) | round | int }}%{% else %}-{% endif %}</b>pass rate, last {{ s.cells | length }} runs</div>
<div><b>{{ s.runs }}</b>runs in history</div>
<div><b>{{ rows | length }}</b>tests in the grid</div>
</div>
{% if s.in_progress %}<p><span class="badge Running">running</span> {{ s.in_progress | join(", ") }}</p>{% endif %}
{% if window %}
<div class="plots"><figure>{{ duration_svg | safe }}</figure><figure>{{ counts_svg | safe }}</figure></div>
<h2>Tests to look at (last {{ window | length }} runs)</h2>
<div class="rank">
{% for title, key, items in ranked %}<section id="{{ key }}"><h3>{{ title }} ({{ items | length }})</h3><p class="def">{{ definitions[title] }}</p>
<ol>{% for r in items %}<li><a href="{{ test_url(r.test) }}" title="{{ r.test }}">{{ r.test }}</a>
<span class="muted">{% if key == 'flaky' %}{{ r.reruns }} rerun, {{ r.flips }} flips{% elif key == 'failing' %}{{ r.failing_runs }} runs{% elif key == 'slowest' %}{{ r.median_seconds }}s{% endif %}</span></li>
{% else %}<li class="muted">none</li>{% endfor %}</ol></section>{% endfor %}
</div>
<h2 id="grid">Per-test grid</h2>
<p class="legend muted">Newest run on the left; a cell opens that run's report.
<span class="sw passed"></span>passed<span class="sw failed"></span>failed<span class="sw error"></span>error<span class="sw xpassed"></span>xpassed (marked xfail, passed)<span class="sw flaky"></span>flaky (passed on rerun)<span class="sw skipped"></span>skipped / xfailed<span class="sw absent"></span>absent
&nbsp; Show <a href="?runs=10">10</a> · <a href="?runs=30">30</a> · <a href="?runs=100">100</a> · <a href="?runs={{ max_runs }}">all</a> runs</p>
<div style="overflow-x:auto"><table class="grid"><tr><th></th>
{% for run in window %}<th class="run"><a href="{{ run_url(run.run_id) }}" title="{{ run.run_id }}: {{ run.result }}">{{ short(run.start) }}</a></th>{% endfor %}</tr>
<tr><td class="name muted">run result</td>{% for run in window %}<td class="cell"><a class="{{ run.result }}" href="{{ run_url(run.run_id) }}" title="{{ run.run_id }}: {{ run.result }}"></a></td>{% endfor %}</tr>
{% for row in rows %}<tr><td class="name"><a href="{{ test_url(row.test) }}" title="{{ row.test }}">{{ row.test }}</a></td>
{% for run in window %}{% set o = row.outcomes[loop.index0] %}<td class="cell">{% if o and run.has_folder %}<a class="{{ o }}" href="{{ report_url(run.run_id) }}" title="{{ run.run_id }}: {{ o }} in {{ row.seconds[loop.index0] }}s"></a>{% else %}<span class="{{ o or 'absent' }}" title="{{ run.run_id }}: {{ o or 'absent' }}{% if o %} (report removed by retention){% endif %}"></span>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table></div>
<h2 id="runs">Runs</h2>
<table class="list"><tr><th>Run</th><th>Started</th><th>Trigger</th><th>Result</th><th class="num">Tests</th><th class="num">Passed</th><th class="num">Failed</th><th class="num">Errors</th><th class="num">Skipped</th><th class="num">Flaky</th><th class="num">xfailed</th><th class="num">xpassed</th><th class="num">Duration</th><th class="num">Workers</th><th class="num">Shards</th><th>Report</th></tr>
{% for run in window %}<tr class="{{ 'green' if run.result == 'Passed' else 'red' }}"><td><a href="{{ run_url(run.run_id) }}"><code>{{ run.run_id }}</code></a></td><td>{{ stamp(run.start) }}</td><td>{{ run.trigger or '-' }}</td>
<td><span class="badge {{ run.result }}" title="{{ run.reason }}">{{ run.result }}</span></td>
{% for key in ('total', 'passed', 'failed', 'errors', 'skipped', 'flaky', 'xfailed', 'xpassed') %}<td class="num">{{ run.counts[key] }}</td>{% endfor %}
<td class="num">{{ run.duration | round(1) }}s</td><td class="num">{{ run.workers }}</td><td class="num">{{ run.shards }}</td>
<td>{% if run.has_folder %}<a href="{{ report_url(run.run_id) }}">report.html</a>{% else %}<span class="muted">removed</span>{% endif %}</td></tr>{% endfor %}
</table>
{% else %}<p class="muted">No finished run yet.</p>{% endif %}
{% endblock %}"""

RUN = """{% extends "base.html" %}{% block title %}{{ run_id }}{% endblock %}{% block main %}
<p class="muted"><a href="/">Plans</a> / <a href="/?ns={{ ns }}">{{ ns }}</a> / <a href="{{ plan_url }}">{{ plan }}</a></p>
<h1>Run <code>{{ run_id }}</code> {% if run %}<span class="badge {{ run.result }}">{{ run.result }}</span>{% elif folder %}<span class="badge Running">running</span>{% endif %}</h1>
{% if run %}<div class="facts"><div><b>{{ stamp(run.start) }}</b>started ({{ run.trigger or 'trigger unknown' }})</div>
<div><b>{{ run.duration | round(1) }}s</b>duration</div><div><b>{{ run.counts.total }}</b>tests</div>
<div><b>{{ run.counts.passed }} / {{ run.counts.failed }} / {{ run.counts.errors }}</b>passed / failed / errors</div>
<div><b>{{ run.counts.skipped }} / {{ run.counts.flaky }} / {{ run.counts.xfailed }} / {{ run.counts.xpassed }}</b>skipped / flaky / xfailed / xpassed</div>
<div><b>{{ run.workers }} x {{ run.shards }}</b>workers x shards</div></div>
{% if run.reason %}<p><b>Reason:</b> {{ run.reason }}</p>{% endif %}{% endif %}
{% if folder %}
<h2>Files</h2><ul>{% for f in folder.files %}<li><a href="/files/{{ f }}">{{ f.rsplit('/', 1)[-1] }}</a></li>{% endfor %}</ul>
{% if folder.shards %}<h2>Shards</h2><table class="list"><tr><th>Shard</th><th>Result</th><th class="num">Tests</th><th class="num">Passed</th><th class="num">Failed</th><th class="num">Errors</th><th class="num">Duration</th><th>Files</th></tr>
{% for index, files, summary in folder.shards %}<tr><td>shard {{ index }}</td>
<td>{% if summary %}<span class="badge {{ summary.result }}">{{ summary.result }}</span>{% else %}<span class="badge Running">running</span>{% endif %}</td>
{% for key in ('total', 'passed', 'failed', 'errors') %}<td class="num">{{ summary[key] if summary else '' }}</td>{% endfor %}
<td class="num">{{ summary.durationSeconds if summary else '' }}</td>
<td>{% for f in files %}<a href="/files/{{ f }}">{{ f.rsplit('/', 1)[-1] }}</a> {% endfor %}</td></tr>{% endfor %}</table>{% endif %}
<h2>Failed tests ({{ folder.failures | length }})</h2>
{% for f in folder.failures %}<div><span class="badge {{ f.outcome }}">{{ f.outcome }}</span> <a href="{{ test_url(f.test) }}"><code>{{ f.test }}</code></a>
<pre class="msg">{{ f.message or '(no message)' }}</pre></div>{% else %}<p class="muted">None.</p>{% endfor %}
{% else %}<p class="muted">This run's folder is no longer on the volume (retention removed it); its history remains.</p>
{% if run %}<h2>Failed tests</h2><ul>{% for t, v in run.tests.items() if v[0] in ('failed', 'error') %}<li><code>{{ t }}</code> ({{ v[0] }})</li>{% else %}<li class="muted">none</li>{% endfor %}</ul>{% endif %}
{% endif %}{% endblock %}"""

TEST = """{% extends "base.html" %}{% block title %}{{ test }}{% endblock %}{% block main %}
<p class="muted"><a href="/">Plans</a> / <a href="/?ns={{ ns }}">{{ ns }}</a> / <a href="{{ plan_url }}">{{ plan }}</a></p>
<h1><code>{{ test }}</code></h1>
{% if row %}<div class="facts"><div><b>{{ row.reruns }}</b>runs passed on rerun</div><div><b>{{ row.flips }}</b>pass/fail flips</div>
<div><b>{{ row.failing_runs }}</b>failing runs now</div><div><b>{{ row.median_seconds }}s</b>median duration</div></div>
<div class="plots"><figure>{{ duration_svg | safe }}</figure></div>{% endif %}
<h2>Runs</h2><table class="list"><tr><th>Run</th><th>Started</th><th>Outcome</th><th class="num">Duration</th><th>Report</th></tr>
{% for run in window %}{% set o = row.outcomes[loop.index0] if row else none %}<tr><td><a href="{{ run_url(run.run_id) }}"><code>{{ run.run_id }}</code></a></td><td>{{ stamp(run.start) }}</td>
<td><span class="badge {{ o or 'absent' }}" {% if not o %}style="color:var(--muted)"{% endif %}>{{ o or 'absent' }}</span></td>
<td class="num">{% if o %}{{ row.seconds[loop.index0] }}s{% endif %}</td>
<td>{% if run.has_folder %}<a href="{{ report_url(run.run_id) }}">report.html</a>{% else %}<span class="muted">removed</span>{% endif %}</td></tr>{% endfor %}</table>
{% endblock %}"""

ERROR = """{% extends "base.html" %}{% block title %}{{ code }}{% endblock %}{% block main %}
<h1>{{ code }}</h1><p>{{ message }}</p><p><a href="/">All plans</a></p>{% endblock %}"""

TEMPLATES = {
    "base.html": BASE,
    "plans.html": PLANS,
    "plan.html": PLAN,
    "run.html": RUN,
    "test.html": TEST,
    "error.html": ERROR,
}
