"""Amazon Selling Partner API: the shapes of the requests and replies we use, in one place.

Written from Amazon's published models (Orders API v0 `ordersV0.json`, Tokens API
2021-03-01, Listings Items API 2021-08-01, Login with Amazon): field names, types, enums,
limits. The simulator refuses a request that does not match (HTTP 400 `InvalidInput`, as
Amazon does), and the tests check every request the adapter sent against them.
"""

from __future__ import annotations

from .shapes import BOOLEAN, DATE_TIME, INTEGER, array, obj, string

# --- enums (Orders v0) ---------------------------------------------------------------------

ORDER_STATUSES = (
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "Canceled",
    "Unfulfillable",
    "InvoiceUnconfirmed",
)
FULFILLMENT_CHANNELS = ("MFN", "AFN")
PAYMENT_METHODS = ("COD", "CVS", "Other")
EASY_SHIP_STATUSES = (
    "PendingSchedule",
    "PendingPickUp",
    "PendingDropOff",
    "LabelCanceled",
    "PickedUp",
    "DroppedOff",
    "AtOriginFC",
    "AtDestinationFC",
    "Delivered",
    "RejectedByBuyer",
    "Undeliverable",
    "ReturningToSeller",
    "ReturnedToSeller",
    "Lost",
    "OutForDelivery",
    "Damaged",
)
# Restricted data (a Restricted Data Token is needed for getOrders to return them).
DATA_ELEMENTS = ("buyerInfo", "shippingAddress", "buyerTaxInformation")

# --- usage plans: operation -> (requests per second, burst), the documented defaults -------

USAGE_PLANS = {
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "createRestrictedDataToken": (1.0, 10),
    "patchListingsItem": (5.0, 10),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    "listHandoverSlots": (1.0, 5),
    "createScheduledPackageBulk": (1.0, 5),
    "getScheduledPackage": (1.0, 5),
}

# --- requests --------------------------------------------------------------------------------

MONEY = obj(("CurrencyCode", "Amount"), CurrencyCode=string(), Amount=string())

GET_ORDERS_QUERY = {
    # query parameters: a CSV value is split before its items are checked
    "MarketplaceIds": {"required": True, "csv": True, "maxItems": 50},
    "CreatedAfter": {"format": "date-time"},
    "CreatedBefore": {"format": "date-time"},
    "LastUpdatedAfter": {"format": "date-time"},
    "LastUpdatedBefore": {"format": "date-time"},
    "OrderStatuses": {"csv": True, "enum": ORDER_STATUSES},
    "FulfillmentChannels": {"csv": True, "enum": FULFILLMENT_CHANNELS},
    "PaymentMethods": {"csv": True, "enum": PAYMENT_METHODS},
    "EasyShipShipmentStatuses": {"csv": True, "enum": EASY_SHIP_STATUSES},
    "MaxResultsPerPage": {"integer": (1, 100)},
    "NextToken": {},
    "AmazonOrderIds": {"csv": True, "maxItems": 50},
}

RDT_REQUEST = obj(
    ("restrictedResources",),
    restrictedResources=array(
        obj(
            ("method", "path"),
            method=string(enum=["GET", "PUT", "POST", "DELETE"]),
            path=string(minLength=1),
            dataElements=array(string(enum=list(DATA_ELEMENTS))),
        ),
        minItems=1,
        maxItems=50,
    ),
    targetApplication=string(),
)

CONFIRM_SHIPMENT = obj(
    ("marketplaceId", "packageDetail"),
    marketplaceId=string(minLength=1),
    codCollectionMethod=string(enum=["DirectPayment"]),
    packageDetail=obj(
        ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"),
        packageReferenceId=string(minLength=1),
        carrierCode=string(minLength=1),
        carrierName=string(),
        shippingMethod=string(),
        trackingNumber=string(minLength=1),
        shipDate=DATE_TIME,
        shipFromSupplySourceId=string(),
        orderItems=array(
            obj(
                ("orderItemId", "quantity"),
                orderItemId=string(minLength=1),
                quantity={"type": "integer", "minimum": 1},
                transparencyCodes=array(string()),
            ),
            minItems=1,
        ),
    ),
)

PATCH = obj(  # one JSON patch of a listing (Listings Items API and JSON_LISTINGS_FEED)
    ("op", "path"),
    op=string(enum=["add", "replace", "merge", "delete"]),
    path=string(minLength=1),
    value=array({}),
)
PATCH_LISTINGS_ITEM = obj(
    ("productType", "patches"),
    productType=string(minLength=1),
    patches=array(PATCH, minItems=1),
)

# --- Feeds API 2021-06-30 ------------------------------------------------------------------

FEED_TYPES = ("JSON_LISTINGS_FEED", "POST_ORDER_ACKNOWLEDGEMENT_DATA")  # the ones we send
PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
CANCEL_REASONS = (  # OrderAcknowledgement.xsd
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
    "BuyerCanceled",
    "GeneralAdjustment",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "CustomerReturn",
    "MerchandiseNotReceived",
)
CREATE_FEED_DOCUMENT = obj(("contentType",), contentType=string(minLength=1))
CREATE_FEED = obj(
    ("feedType", "marketplaceIds", "inputFeedDocumentId"),
    feedType=string(enum=list(FEED_TYPES)),
    marketplaceIds=array(string(minLength=1), minItems=1, maxItems=25),
    inputFeedDocumentId=string(minLength=1),
    feedOptions={"type": "object"},
)
# JSON_LISTINGS_FEED (listings-feed-schema-v2): a header and up to 10,000 messages
LISTINGS_FEED = obj(
    ("header", "messages"),
    header=obj(
        ("sellerId", "version"),
        sellerId=string(minLength=1),
        version=string(enum=["2.0"]),
        issueLocale=string(),
    ),
    messages=array(
        obj(
            ("messageId", "sku", "operationType"),
            messageId={"type": "integer", "minimum": 1},
            sku=string(minLength=1, maxLength=40),
            operationType=string(enum=["UPDATE", "PARTIAL_UPDATE", "DELETE", "PATCH"]),
            productType=string(minLength=1),
            patches=array(PATCH),
        ),
        minItems=1,
        maxItems=10000,
    ),
)

# --- Easy Ship API 2022-03-23 --------------------------------------------------------------

DIMENSIONS = obj(
    (),
    length={"type": "number", "minimum": 0.01},
    width={"type": "number", "minimum": 0.01},
    height={"type": "number", "minimum": 0.01},
    unit=string(enum=["cm"]),
    identifier=string(),
)
WEIGHT = obj((), value={"type": "number", "minimum": 11.0}, unit=string(enum=["grams", "g"]))
LIST_HANDOVER_SLOTS = obj(
    ("marketplaceId", "amazonOrderId", "packageDimensions", "packageWeight"),
    marketplaceId=string(minLength=1, maxLength=255),
    amazonOrderId=string(minLength=1),
    packageDimensions=DIMENSIONS,
    packageWeight=WEIGHT,
)
CREATE_SCHEDULED_PACKAGES = obj(
    ("marketplaceId", "orderScheduleDetailsList", "labelFormat"),
    marketplaceId=string(minLength=1, maxLength=255),
    labelFormat=string(enum=["PDF", "ZPL"]),
    orderScheduleDetailsList=array(
        obj(
            ("amazonOrderId",),
            amazonOrderId=string(minLength=1),
            packageDetails=obj(
                ("packageTimeSlot",),
                packageItems=array(
                    obj(
                        (),
                        orderItemId=string(maxLength=255),
                        orderItemSerialNumbers=array(string()),
                    ),
                    maxItems=500,
                ),
                packageTimeSlot=obj(("slotId",), slotId=string(minLength=1, maxLength=255)),
                packageIdentifier=string(),
            ),
        ),
        minItems=1,
    ),
)

FULFILLMENT_AVAILABILITY = obj(
    ("fulfillment_channel_code", "quantity"),
    fulfillment_channel_code=string(minLength=1),
    quantity={"type": "integer", "minimum": 0},
)

LWA_TOKEN_FORM = ("grant_type", "refresh_token", "client_id", "client_secret")

# --- replies ---------------------------------------------------------------------------------

ADDRESS = obj(
    ("Name",),
    Name=string(),
    AddressLine1=string(),
    AddressLine2=string(),
    City=string(),
    StateOrRegion=string(),
    PostalCode=string(),
    CountryCode=string(),
    Phone=string(),
)
ORDER = obj(
    ("AmazonOrderId", "PurchaseDate", "LastUpdateDate", "OrderStatus"),
    AmazonOrderId=string(minLength=1),
    PurchaseDate=DATE_TIME,
    LastUpdateDate=DATE_TIME,
    OrderStatus=string(),  # an enum; replies may carry values added since (never fail on them)
    FulfillmentChannel=string(),
    PaymentMethod=string(),
    OrderTotal=MONEY,
    NumberOfItemsShipped=INTEGER,
    NumberOfItemsUnshipped=INTEGER,
    MarketplaceId=string(),
    EasyShipShipmentStatus=string(),
    LatestShipDate=DATE_TIME,
    IsPrime=BOOLEAN,
    IsBusinessOrder=BOOLEAN,
    ShippingAddress=ADDRESS,
    BuyerInfo=obj(BuyerEmail=string(), BuyerName=string()),
)
ORDERS_REPLY = obj(
    ("payload",),
    payload=obj(
        ("Orders",),
        Orders=array(ORDER),
        NextToken=string(),
        LastUpdatedBefore=DATE_TIME,
        CreatedBefore=DATE_TIME,
    ),
)
ORDER_ITEM = obj(
    ("ASIN", "OrderItemId", "QuantityOrdered"),
    ASIN=string(),
    SellerSKU=string(),
    OrderItemId=string(minLength=1),
    Title=string(),
    QuantityOrdered=INTEGER,
    QuantityShipped=INTEGER,
    ItemPrice=MONEY,
    ShippingPrice=MONEY,
)
ORDER_ITEMS_REPLY = obj(
    ("payload",),
    payload=obj(
        ("AmazonOrderId", "OrderItems"),
        AmazonOrderId=string(),
        OrderItems=array(ORDER_ITEM),
        NextToken=string(),
    ),
)
ERRORS_REPLY = obj(
    ("errors",),
    errors=array(obj(("code", "message"), code=string(), message=string(), details=string())),
)
