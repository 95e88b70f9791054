"""The release report: one self-contained HTML file from a built warehouse (`build_report`)."""

from surveysynth.report.build import build_report

__all__ = ["build_report"]
