"""The call report as one self-contained HTML page (``render_report_html``), and a batch's
overview page (``render_batch_index``)."""

from models.report import Report
from service.report_page.index import render_batch_index
from service.report_page.page import render_report_html
from service.summary import summarize

__all__ = ["page_from_json", "render_batch_index", "render_report_html"]


def page_from_json(report_json: str) -> str:
    """The page of a report given as its JSON text (as stored or returned by a worker); a
    report stored before ``summary`` existed gets its sentences now."""
    report = Report.model_validate_json(report_json)
    if not report.summary:
        report = report.model_copy(update={"summary": summarize(report)})
    return render_report_html(report)
