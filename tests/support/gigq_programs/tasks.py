# tasks.py
def generate_report(format="pdf"):
    """Generate the daily summary report."""
    # ... your logic here ...
    return {"status": "done", "format": format}
