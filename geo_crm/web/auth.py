"""Log in, log out, change password."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, session as cookie, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from geo_crm.api.auth import limiter
from geo_crm.http import current_user, db, login_required, login_user
from geo_crm.security.auth import AuthError, authenticate, revoke_session, set_password, utcnow
from geo_crm.security.passwords import PasswordPolicyError, verify_password

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_("Password"), validators=[DataRequired(), Length(max=256)])


class PasswordForm(FlaskForm):
    current = PasswordField(_("Current password"), validators=[DataRequired()])
    new = PasswordField(_("New password"), validators=[DataRequired(), Length(min=10, max=256)])
    confirm = PasswordField(_("Repeat new password"), validators=[DataRequired(), EqualTo("new")])


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: no open redirects."""
    if not target:
        return url_for("dashboard.index")
    u = urlparse(target)
    if u.scheme or u.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        if not limiter().hit(request.remote_addr or "?"):
            error, status = _("Too many login attempts. Wait a minute and try again."), 429
        else:
            s = db()
            try:
                user = authenticate(s, form.username.data, form.password.data)
                s.commit()
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            except AuthError as e:
                s.commit()
                error, status = str(e), 401
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    # CSRF-protected POST: a link cannot log someone out. The session id is revoked
    # server-side, so a copy of the cookie taken before logout stops working too.
    sid = cookie.get("sid")
    if sid and current_user() is not None:
        s = db()
        revoke_session(s, sid, utcnow() + current_app.permanent_session_lifetime)
        s.commit()
    cookie.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = PasswordForm()
    error = None
    if form.validate_on_submit():
        user = db().merge(current_user())
        if not verify_password(user.password_hash, form.current.data):
            error = _("The current password is wrong.")
        else:
            try:
                set_password(user, form.new.data)
                db().commit()
                login_user(user)  # new epoch: other sessions and tokens are now invalid
                flash(_("Password changed. Other sessions have been signed out."), "success")
                return redirect(url_for("dashboard.index"))
            except PasswordPolicyError as e:
                error = str(e)
    return render_template("password.html", form=form, error=error)
