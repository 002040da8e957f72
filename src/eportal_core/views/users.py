"""Console user management (the same rules as ``kc.eportal``, from services.users)."""
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from ..permissions import Permission
from ..services import ServiceError
from ..services import users as users_service

SORTS = {"num": lambda u: u.id, "username": lambda u: u.username.lower(), "role": lambda u: u.role,
         "source": lambda u: u.source, "last_login": lambda u: (u.last_login is None, u.last_login)}


@view_config(route_name="users", renderer="eportal_core:templates/users/list.pt", request_method="GET")
def users_list(request):
    sort = request.params.get("sort", "num")
    if sort not in SORTS:
        sort = "num"
    descending = request.params.get("dir") == "desc"
    users = sorted(users_service.list_users(request.dbsession), key=SORTS[sort], reverse=descending)
    return {"title": "Users", "users": users, "sort": sort, "descending": descending,
            "min_length": request.registry.settings["eportal.password_min_length"]}


@view_config(route_name="user_add", renderer="eportal_core:templates/users/add.pt", permission=Permission.MANAGE)
def user_add(request):
    form = {"username": "", "role": "admin", "description": ""}
    error = ""
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        password, confirm = request.POST.get("password", ""), request.POST.get("confirm", "")
        try:
            if form["role"] not in ("admin", "readonly"):
                raise ServiceError("choose a role: admin or readonly")
            if password != confirm:
                raise ServiceError("the two passwords differ")
            users_service.add_user(request.dbsession, form["username"], password, readonly=form["role"] == "readonly",
                                   min_length=request.registry.settings["eportal.password_min_length"],
                                   actor=request.identity.username, description=form["description"][:500])
        except ServiceError as exc:
            error = str(exc)
            request.response.status_int = 400
        else:
            request.session.flash(f"User '{form['username']}' added.", "ok")
            return HTTPSeeOther(request.route_url("users"))
    return {"title": "Add user", "form": form, "error": error,
            "min_length": request.registry.settings["eportal.password_min_length"]}


def _user_action(request, action):
    username = request.matchdict["username"]
    try:
        message = action(username)
    except ServiceError as exc:
        request.session.flash(str(exc)[:1].upper() + str(exc)[1:] + ".", "error")
    else:
        request.session.flash(message, "ok")
    return HTTPSeeOther(request.route_url("users"))


@view_config(route_name="user_delete", request_method="POST", permission=Permission.MANAGE)
def user_delete(request):
    def delete(username):
        if username == request.identity.username:
            raise ServiceError("you cannot delete the account you are logged in with")
        users_service.delete_user(request.dbsession, username, actor=request.identity.username)
        return f"User '{username}' deleted."
    return _user_action(request, delete)


@view_config(route_name="user_role", request_method="POST", permission=Permission.MANAGE)
def user_role(request):
    role = request.POST.get("role")

    def change(username):
        if role not in ("admin", "readonly"):
            raise ServiceError("choose a role: admin or readonly")
        users_service.set_readonly(request.dbsession, username, role == "readonly", actor=request.identity.username)
        return f"User '{username}' is now {role}."
    return _user_action(request, change)


@view_config(route_name="user_password", request_method="POST", permission=Permission.MANAGE)
def user_password(request):
    password, confirm = request.POST.get("password", ""), request.POST.get("confirm", "")

    def change(username):
        if password != confirm:
            raise ServiceError("the two passwords differ")
        record = getattr(request.session, "record", None)
        users_service.change_password(request.dbsession, username, password, actor=request.identity.username,
                                      min_length=request.registry.settings["eportal.password_min_length"],
                                      keep_session=record.digest if record is not None else None)
        return f"Password of '{username}' changed; their open sessions were ended."
    return _user_action(request, change)


def includeme(config):
    config.add_route("users", "/admin/users/")
    config.add_route("user_add", "/admin/users/add")
    config.add_route("user_delete", "/admin/users/{username}/delete")
    config.add_route("user_role", "/admin/users/{username}/role")
    config.add_route("user_password", "/admin/users/{username}/password")
