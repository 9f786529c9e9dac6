"""Shaped like Conscent's event types (shared/vendors/conscent-event-types.txt)."""

from router.validation import ValidatorSpec

LOCATIONS = [
    "PAGE",
    "PAYWALL",
    "CONTENT_FLOW_LOGIN",
    "CONTENT_FLOW_OTP",
    "CONTENT_FLOW_ADD_MONEY_PAGE",
    "CONTENT_FLOW_PAYMENT_GATEWAY",
    "SSO_LOGIN",
    "SSO_OTP",
    "UDB",
    "UDB_LOGIN",
    "UDB_OTP",
    "SUBS_LOGIN",
    "SUBS_OTP",
    "POPUP",
    "SLP",
    "SAP",
    "SRP",
    "SUBS_PAYMENT_GATEWAY",
    "FAV",
    "FAV_ICON",
    "USER_BAR",
    "RECOMMENDATION_POPUP",
]
CLICK_ACTIONS = [
    "P2P",
    "ADD_MONEY_TO_WALLET",
    "PAYMENT_GATEWAY_CROSS_BTN",
    "LOGIN_FLOW_CROSSBTN",
    "CONTENT",
    "PASS",
    "SUBS",
    "MOBILE",
    "EMAIL",
    "GOOGLE",
    "FACEBOOK",
    "BUY_NOW",
    "RENEW_BTN",
    "CHANGE_PLAN",
    "ADD_ADDRESS",
    "COUPON",
    "POPUP_REDIRECT",
    "POPUP_CLOSE",
]
UUID = r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"


def event(event_type, **fields):
    return {
        "clientId": {"type": "string", "required": True, "empty": False},
        "eventType": {"type": "string", "required": True, "allowed": [event_type]},
        "eventLocation": {"type": "string", "required": True, "allowed": LOCATIONS},
        "anonId": {"type": "string", "required": True, "regex": UUID},
        "userId": {"type": "string", "maxlength": 128},
        **fields,
    }


PING = event(
    "PING",
    pingId={"type": "string", "required": True, "regex": UUID},
    active={"type": "integer", "required": True, "allowed": [0, 1]},
)
CLICK = event("CLICK", clickAction={"type": "string", "allowed": CLICK_ACTIONS})
PURCHASE = event(
    "PURCHASE",
    userId={"type": "string", "required": True, "empty": False, "maxlength": 128},
    purchaseId={"type": ["string", "integer"], "required": True},
)
ENVELOPE = {
    "messageBody": {
        "type": "list",
        "required": True,
        "minlength": 1,
        "maxlength": 50,
        "schema": {"type": "dict", "schema": {"eventType": {"type": "string", "required": True}}},
    },
    "messageHeaders": {"type": "dict", "valuesrules": {"type": "string"}},
}

SPECS = [
    ValidatorSpec("conscent_like", "PING", PING, allow_unknown=False),
    ValidatorSpec("conscent_like", "CLICK", CLICK, allow_unknown=False),
    ValidatorSpec("conscent_like", "PURCHASE", PURCHASE),
    ValidatorSpec("conscent_like", "envelope", ENVELOPE),
]
