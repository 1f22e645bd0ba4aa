"""Extension objects, created once and bound to each app in ``create_app`` with ``init_app``."""
from flask_cors import CORS
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy

from .sampling.hub import SamplerHub

db = SQLAlchemy()
migrate = Migrate()
sock = Sock()
cors = CORS()
hub = SamplerHub()
