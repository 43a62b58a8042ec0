"""Console forms (Flask-WTF: CSRF on every one)."""
from __future__ import annotations

import pycountry
from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, IntegerField, PasswordField, SelectField,
                     SelectMultipleField, StringField)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..money import currency_codes
from ..permissions import PRIVILEGES


def country_choices():
    return [("", "— choose —")] + sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=10)])


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""


class CurrencySettingsForm(FlaskForm):
    currency = SelectField("Currency", validators=[DataRequired()])
    precision = IntegerField("Billing Precision", validators=[DataRequired(message="Required."), NumberRange(0, 6)])
    invoice_prefix = StringField("Invoice number prefix", validators=[Length(max=20)])
    payment_terms_days = IntegerField("Payment terms (days)", validators=[NumberRange(0, 365)])
    apply_wallet = BooleanField("Pay new invoices from the wallet balance first")
    currency_mode = SelectField("Currency model", choices=[
        ("single", "Single currency: every buyer is billed in the billing currency"),
        ("by_buyer_country", "By buyer country: buyers abroad are billed in the foreign currency")])
    foreign_currency = SelectField("Currency for buyers abroad")
    online_minimums = StringField("Online payment minimums", validators=[Length(max=200)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.currency.choices = [(c, c) for c in currency_codes()]
        self.foreign_currency.choices = [(c, c) for c in currency_codes()]


class OrganisationForm(FlaskForm):
    kind = SelectField("Type", choices=[("customer", "Customer"), ("reseller", "Reseller")])
    parent_id = SelectField("Belongs to", coerce=int, validate_choice=False)
    name = StringField("Organization Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Contact Email", validators=[Optional(), Email()])
    phone = StringField("Mobile", validators=[Optional(), Length(max=40)])
    address_line1 = StringField("Address Line 1", validators=[Length(max=200)])
    address_line2 = StringField("Address Line 2", validators=[Length(max=200)])
    city = StringField("City", validators=[Length(max=100)])
    state = StringField("State", validators=[Length(max=100)])
    postal_code = StringField("PIN Code / ZIP", validators=[Length(max=20)])
    country = SelectField("Country", validators=[DataRequired(message="Choose a country.")])
    tax_id = StringField("KYC ID (tax id)", validators=[Length(max=40)])
    timezone = StringField("Time zone", default="UTC", validators=[Length(max=64)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.country.choices = country_choices()


class UserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(min=10)])
    role = SelectField("Role")
    privileges = MultiCheckboxField("Privileges")

    def __init__(self, *a, roles=(), privileges=(), **kw):
        super().__init__(*a, **kw)
        self.role.choices = list(roles)
        self.privileges.choices = [(p, PRIVILEGES[p]) for p in sorted(privileges)]


class PrivilegesForm(FlaskForm):
    privileges = MultiCheckboxField("Privileges")

    def __init__(self, *a, privileges=(), **kw):
        super().__init__(*a, **kw)
        self.privileges.choices = [(p, PRIVILEGES[p]) for p in sorted(privileges)]


class TaxRuleForm(FlaskForm):
    name = StringField("Rule Name", validators=[DataRequired(), Length(max=100)])
    country = SelectField("Country", validators=[DataRequired(message="Choose a country.")])
    rate = StringField("Tax Rate %", validators=[DataRequired()])
    status = SelectField("Status", choices=[("active", "Active"), ("suspended", "Suspend")])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.country.choices = country_choices()
