"""Every table, imported in one place for Alembic and for tests."""

from yibao.audit import models as audit_models  # noqa: F401
from yibao.chronic import models as chronic_models  # noqa: F401
from yibao.codes import models as codes_models  # noqa: F401
from yibao.console import models as console_models  # noqa: F401
from yibao.credential import models as credential_models  # noqa: F401
from yibao.deployment import models as deployment_models  # noqa: F401
from yibao.encounter import models as encounter_models  # noqa: F401
from yibao.files import models as files_models  # noqa: F401
from yibao.gateway import models as gateway_models  # noqa: F401
from yibao.ledger import models as ledger_models  # noqa: F401
from yibao.registry import models as registry_models  # noqa: F401
from yibao.store.db import Base

metadata = Base.metadata
