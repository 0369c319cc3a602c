"""KYC Desk: the compliance team's dashboard for Align customers."""

__version__ = "0.1.0"
