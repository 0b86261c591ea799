"""The parts of the monthly invoice; :mod:`llmlab.invoice` is the public face.

    config.py    the invoicing config file (issuer, recipients, default terms)
    params.py    checking and resolving parameters (month, markup, currency, ...)
    money.py     Decimal rounding (half-up to the minor unit) and formatting
    compute.py   the numbers, exactly, from the usage store
    render.py    the invoice as self-contained HTML with a static SVG chart
    output.py    papermill run, nbconvert HTML, Chromium PDF
"""
