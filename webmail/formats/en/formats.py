"""English formats where Django's `en` ones (American) would mislead a British reader.

"12/19/2025" reads as the 12th of the 19th month in Britain, Ireland and most of the world;
"19 Dec 2025" reads the same everywhere. Times as mail clients show them: "4:37 PM", not
Django's "4:37 p.m." or "noon". Everything not set here is Django's `en`.
"""

SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "g:i A"
DATETIME_FORMAT = "j M Y, g:i A"
SHORT_DATETIME_FORMAT = "j M Y, g:i A"
