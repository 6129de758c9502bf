"""Products, features and templates of one vendor."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.orm import Session, lazyload

from licentia.domain.actors import Actor
from licentia.domain.errors import AlreadyExistsError, NotFoundError, ValidationError, field_path
from licentia.domain.templates import OptionRuleError, TemplateOptions, end_date_passed
from licentia.server.audit.services import record
from licentia.server.catalog.models import Feature, Product, Template
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey

# A code or SKU, and what a name holds besides spaces; the OpenAPI document states
# both (api/schemas.py), in JSON Schema's regular expressions, where ``$`` is the end
# of the text: Python's would also match before a final newline, so codes are matched
# whole.
CODE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Not only spaces: a character that ``str.strip`` keeps (its whitespace, spelled out,
# as ECMA-262's \\s differs from it).
NAME_PATTERN = "[^{}]".format(
    "".join(f"\\u{point:04X}" for point in range(0x3001) if chr(point).isspace())
)
_CODE = re.compile(CODE_PATTERN)
# Every license document names its features and every list of products carries them:
# a product with 400,000 made GET /products take a minute. Far above any real product.
MAX_FEATURES = 256
_SECRET_PURPOSE = "template-secret"  # noqa: S105 - an HKDF purpose label, not a secret


def _check_code(value: str, field: str) -> None:
    if not _CODE.fullmatch(value):
        raise ValidationError(f"{field} must be 1-64 letters, digits, '.', '_' or '-'", field=field)


def check_name(value: str, field: str = "name") -> None:
    """A name is 1-200 characters and not only spaces."""
    if not value.strip() or len(value) > 200:
        raise ValidationError(f"{field} must be 1-200 characters", field=field)


def create_product(
    session: Session, actor: Actor, *, code: str, name: str, features: list[dict[str, str]]
) -> Product:
    """Raises ValidationError (bad code or name), AlreadyExistsError (code taken)."""
    vendor_id = _vendor(actor)
    _check_code(code, "code")
    check_name(name)
    if session.scalar(
        select(Product.id).where(Product.vendor_id == vendor_id, Product.code == code)
    ):
        raise AlreadyExistsError(f"product {code!r} already exists", field="code")
    product = Product(vendor_id=vendor_id, code=code, name=name)
    session.add(product)
    _add_features(product, features)
    session.flush()
    record(session, actor, "product.created", "product", product.id, after=product_view(product))
    return product


def update_product(
    session: Session,
    actor: Actor,
    product_id: str,
    *,
    name: str | None,
    add_features: list[dict[str, str]],
) -> Product:
    """Rename and/or add features. Features are never removed: licenses name them."""
    product = get_product(session, actor, product_id)
    before = product_view(product)
    if name is not None:
        check_name(name)
        product.name = name
    _add_features(product, add_features, field="add_features")
    session.flush()
    record(
        session,
        actor,
        "product.updated",
        "product",
        product.id,
        before=before,
        after=product_view(product),
    )
    return product


def _add_features(
    product: Product, features: list[dict[str, str]], *, field: str = "features"
) -> None:
    """Errors name ``<field>[i].code``: the request field the feature came in.
    Raises ValidationError ``TOO_MANY_FEATURES`` beyond MAX_FEATURES in all."""
    existing = {f.code for f in product.features}
    if len(existing) + len(features) > MAX_FEATURES:
        raise ValidationError(
            f"a product has at most {MAX_FEATURES} features ({len(existing)} already)",
            field=field,
            code="TOO_MANY_FEATURES",
            limit=MAX_FEATURES,
        )
    for index, feature in enumerate(features):
        code = feature["code"]
        _check_code(code, f"{field}[{index}].code")
        if code in existing:
            raise AlreadyExistsError(
                f"feature {code!r} already exists", field=f"{field}[{index}].code"
            )
        existing.add(code)
        product.features.append(Feature(code=code, name=feature.get("name") or code))


def get_product(session: Session, actor: Actor, product_id: str) -> Product:
    product = session.scalar(
        select(Product).where(Product.id == product_id, Product.vendor_id == _vendor(actor))
    )
    if product is None:
        raise NotFoundError("product", product_id)
    return product


def products_query(actor: Actor) -> Select[Product]:
    return select(Product).where(Product.vendor_id == _vendor(actor))


def all_products(session: Session, actor: Actor) -> list[Product]:
    """Every product of the vendor with its features, by code (for choosing one)."""
    return list(session.scalars(products_query(actor).order_by(Product.code)))


def product_view(product: Product) -> dict[str, Any]:
    return {
        "code": product.code,
        "name": product.name,
        "features": [{"code": f.code, "name": f.name} for f in product.features],
    }


def parse_options(raw: dict[str, Any]) -> TemplateOptions:
    """Validate template options; ValidationError names the first offending field."""
    try:
        return TemplateOptions.model_validate(raw)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        path: list[str | int] = ["options", *error["loc"]]
        rule = error.get("ctx", {}).get("error")
        if isinstance(rule, OptionRuleError):
            # A rule between options fails on the model; name the option to change.
            path.append(rule.field)
            raise ValidationError(str(rule), field=field_path(path), code=rule.code) from exc
        raise ValidationError(error["msg"], field=field_path(path)) from exc


def create_template(
    session: Session,
    actor: Actor,
    master: MasterKey,
    *,
    sku: str,
    name: str,
    product_id: str,
    features: list[str],
    options: dict[str, Any],
) -> Template:
    """Raises ValidationError (bad SKU, unknown feature, broken option rule,
    ``END_DATE_PASSED``), NotFoundError (product), AlreadyExistsError (SKU taken)."""
    vendor_id = _vendor(actor)
    _check_code(sku, "sku")
    check_name(name)
    if not product_id:
        raise ValidationError("choose the template's product", field="product_id")
    product = get_product(session, actor, product_id)
    parsed = parse_options(options)
    _check_features(product, features)
    if session.scalar(
        select(Template.id).where(Template.vendor_id == vendor_id, Template.sku == sku)
    ):
        raise AlreadyExistsError(f"template {sku!r} already exists", field="sku")
    template = Template(
        vendor_id=vendor_id,
        sku=sku,
        name=name,
        product_id=product.id,
        features=sorted(set(features)),
    )
    _store_options(template, parsed, master)
    session.add(template)
    session.flush()
    record(
        session, actor, "template.created", "template", template.id, after=template_view(template)
    )
    return template


def update_template(
    session: Session,
    actor: Actor,
    master: MasterKey,
    template_id: str,
    *,
    name: str | None,
    features: list[str] | None,
    options: dict[str, Any] | None,
) -> Template:
    """Change a template; licenses already issued keep the options they were issued with.
    Saving it unchanged changes nothing: no new ``updated_at``, no audit event."""
    template = get_template(session, actor, template_id)
    before, secret_before = template_view(template), template.secret_encrypted
    if name is not None:
        check_name(name)
        template.name = name
    if features is not None:
        _check_features(template.product, features)
        template.features = sorted(set(features))
    if options is not None:
        _store_options(template, parse_options(options), master)
    after = template_view(template)
    if after == before and template.secret_encrypted is secret_before:
        return template
    template.updated_at = utcnow()
    session.flush()
    record(session, actor, "template.updated", "template", template.id, before=before, after=after)
    return template


def _check_features(product: Product, features: list[str]) -> None:
    known = {f.code for f in product.features}
    for index, code in enumerate(features):
        if code not in known:
            raise ValidationError(
                f"product {product.code!r} has no feature {code!r}",
                field=f"features[{index}]",
                code="UNKNOWN_FEATURE",
            )


def _check_not_ended(options: TemplateOptions) -> None:
    if end_date_passed(options.validity, utcnow()):
        raise ValidationError(
            f"the end date {options.validity.end_date} has passed: every license of this"
            " template would be expired when issued",
            field="options.validity.end_date",
            code="END_DATE_PASSED",
        )


def _store_options(template: Template, options: TemplateOptions, master: MasterKey) -> None:
    _check_not_ended(options)
    secret = options.custom_data.secret
    stored = options.model_dump(mode="json")
    if secret is not None:
        stored["custom_data"]["secret"] = None
        if unsealed_secret(template.secret_encrypted, master) != secret:  # sealed anew if new
            template.secret_encrypted = master.encrypt(secret.encode(), purpose=_SECRET_PURPOSE)
    template.options = stored


def template_secret(template: Template, master: MasterKey) -> str | None:
    """The template's secret custom data, decrypted (None if it has none)."""
    return unsealed_secret(template.secret_encrypted, master)


def unsealed_secret(secret_encrypted: bytes | None, master: MasterKey) -> str | None:
    """A template's secret custom data from its ``secret_encrypted`` column, for a
    caller that read the column without the template (None if it has none)."""
    if secret_encrypted is None:
        return None
    return master.decrypt(secret_encrypted, purpose=_SECRET_PURPOSE).decode()


def get_template(session: Session, actor: Actor, template_id: str) -> Template:
    template = session.scalar(
        select(Template).where(Template.id == template_id, Template.vendor_id == _vendor(actor))
    )
    if template is None:
        raise NotFoundError("template", template_id)
    return template


def template_by_sku(session: Session, vendor_id: str, sku: str) -> Template | None:
    # Orders resolve a SKU per line and need the product's code, not its features.
    return session.scalar(
        select(Template)
        .where(Template.vendor_id == vendor_id, Template.sku == sku)
        .options(lazyload(Template.product, Product.features))
    )


@dataclass(frozen=True)
class TemplateRef:
    """What issuing a license needs of a template, read without ORM objects."""

    id: str
    vendor_id: str
    sku: str
    product_code: str
    features: list[str]
    options: dict[str, Any]


def template_ref(row: Row[Any]) -> TemplateRef:
    """The TemplateRef in a row of ``TEMPLATES_BY_SKU`` (or a query extending it)."""
    return TemplateRef(row.id, row.vendor_id, row.sku, row.code, row.features, row.options)


# Built once: a statement object reused across calls skips SQLAlchemy's per-call
# construction, cache-key and result-adaptation work (a hot path of every order).
# Parameters: ``vendor_id`` and ``skus`` (a list).
TEMPLATES_BY_SKU = (
    select(
        Template.id,
        Template.vendor_id,
        Template.sku,
        Product.code,
        Template.features,
        Template.options,
    )
    .join(Product, Product.id == Template.product_id)
    .where(
        Template.vendor_id == bindparam("vendor_id"),
        Template.sku.in_(bindparam("skus", expanding=True)),
    )
)


def templates_query(actor: Actor, *, product_id: str | None = None) -> Select[Template]:
    query = select(Template).where(Template.vendor_id == _vendor(actor))
    return query if product_id is None else query.where(Template.product_id == product_id)


def template_view(template: Template) -> dict[str, Any]:
    """What the audit log keeps of a template (never the secret)."""
    return {
        "sku": template.sku,
        "name": template.name,
        "product_id": template.product_id,
        "features": list(template.features),
        "options": template.options,
        "has_secret": template.secret_encrypted is not None,
    }


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "catalog calls need a vendor-scoped actor"
    return actor.vendor_id
