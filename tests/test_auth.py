from sqlalchemy import select

from kassa.models import LoginAttempt, User
from kassa.testing.pytest_plugin import TEST_PASSWORD


def test_sign_in_and_out(app, db, admin, console):
    c = console()
    assert c.get("/").status_code == 302  # login required
    response = c.login(admin.email, TEST_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Dashboard" in c.get("/").get_data(as_text=True)
    assert c.post("/logout").status_code == 302
    assert c.get("/").status_code == 302


def test_passwords_are_hashed(app, db, admin):
    stored = db.session.get(User, admin.id).password_hash
    assert TEST_PASSWORD not in stored and stored.startswith("pbkdf2:sha256")


def test_wrong_password_is_refused_without_telling_which(app, db, admin, console):
    c = console()
    response = c.login(admin.email, "wrong-password!")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    response = c.login("nobody@nowhere.example", "wrong-password!")
    assert "Wrong e-mail or password" in response.get_data(as_text=True)


def test_login_throttled_after_repeated_failures(app, db, admin, console, clock):
    c = console()
    for _ in range(5):
        assert c.login(admin.email, "wrong-password!").status_code == 401
    response = c.login(admin.email, TEST_PASSWORD)  # even the right password now waits
    assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)
    clock.advance(minutes=16)
    assert c.login(admin.email, TEST_PASSWORD).status_code == 302
    assert db.session.scalar(select(LoginAttempt).filter_by(succeeded=True)).email == admin.email


def test_disabled_user_cannot_sign_in(app, db, admin, make_user, provider, console):
    staff = make_user(provider, "staff", privileges=["billing.view"], actor=admin)
    from kassa.services import users

    users.set_active(admin, staff, False)
    assert console().login(staff.email, TEST_PASSWORD).status_code == 401


def test_post_without_csrf_token_is_refused(app, db, admin, console):
    c = console(admin)
    response = c.raw_post("/billing/configurations", data={"currency": "USD", "precision": "2"})
    assert response.status_code == 400 and "form expired" in response.get_data(as_text=True)
    assert console().raw_post("/login", data={"email": admin.email, "password": TEST_PASSWORD}).status_code == 400


def test_open_redirect_after_login_is_refused(app, db, admin, console):
    c = console()
    token = c.token()
    response = c.raw_post("/login?next=https://evil.example/", data={
        "email": admin.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_security_headers_and_cookie_flags(app, db, admin, console):
    c = console()
    response = c.login(admin.email, TEST_PASSWORD)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = c.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.get_data(as_text=True).replace('<script src=', '')


def test_password_change(app, db, admin, console):
    c = console(admin)
    response = c.post("/profile", {"pw-current": TEST_PASSWORD, "pw-new": "a-brand-new-passphrase"})
    assert response.status_code == 302
    c.post("/logout")
    assert console().login(admin.email, "a-brand-new-passphrase").status_code == 302

