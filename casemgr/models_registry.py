"""Imports every table module so SQLModel.metadata is complete (alembic, tests, create_all)."""

from sqlmodel import SQLModel

from casemgr.ai import models as _ai  # noqa: F401
from casemgr.audit import models as _audit  # noqa: F401
from casemgr.cases import models as _cases  # noqa: F401
from casemgr.documents import models as _documents  # noqa: F401
from casemgr.governance import models as _governance  # noqa: F401
from casemgr.intake import models as _intake  # noqa: F401
from casemgr.jobs import models as _jobs  # noqa: F401
from casemgr.metrics import models as _metrics  # noqa: F401
from casemgr.notifications import models as _notifications  # noqa: F401
from casemgr.ratelimit import models as _ratelimit  # noqa: F401
from casemgr.security import models as _security  # noqa: F401
from casemgr.sla import models as _sla  # noqa: F401
from casemgr.users import models as _users  # noqa: F401
from casemgr.views import models as _views  # noqa: F401

metadata = SQLModel.metadata
