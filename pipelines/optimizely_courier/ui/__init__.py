"""`courier ui`: a read-only local web application over the project (server-rendered pages, SVG charts).

    access.py    how a page reads the warehouse without getting in a writer's way
    views.py     what the overview and courier pages show (from `runs`, `groups` and `config`)
    tables.py    a domain table: its feed's columns, counts, a profile and rows (through `runs.explore`)
    results.py   an experiment's results as table rows, downloads and chart series
    charts.py    the SVG charts
    app.py       the Starlette application: routes, templates, the token and the headers
"""
