"""Mail: one module renders every message from per-vendor templates and sends it.

``mailer_for(settings)`` gives the configured sender: SMTP in production, a folder
(``./var/mail/`` by default) plus a log line in development, so that ``make run``
needs no mail server.
"""

from licentia.server.mail.messages import Mail, MailTemplates
from licentia.server.mail.senders import FolderMailer, Mailer, SmtpMailer, mailer_for

__all__ = ["FolderMailer", "Mail", "MailTemplates", "Mailer", "SmtpMailer", "mailer_for"]
