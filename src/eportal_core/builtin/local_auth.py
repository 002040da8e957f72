"""Local users: argon2id hashes in the ``users`` table."""
from sqlalchemy import select

from ..models import User
from ..plugins import hookimpl
from ..services.passwords import hash_password, needs_rehash, verify_password


# tryfirst: local users (the admin among them) are decided before any directory plugin is asked,
# whatever order the plugins were registered in (hookspecs.eportal_authenticate says why)
@hookimpl(tryfirst=True)
def eportal_authenticate(request, login, password):
    user = request.dbsession.scalar(select(User).where(User.username == login))
    if user is None or user.source != "local":
        # still spend the time of one verification, so the answer does not reveal existence
        verify_password(None, password)
        return None
    if not verify_password(user.password_hash, password):
        return False
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
