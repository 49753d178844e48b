"""guidebot — 政务服务中心办事指南助手."""

__version__ = "0.1.0"
