"""The SMS channel: guidebot for every phone, through Kannel or a mainland cloud SMS provider.

- ``render``   Reply → SMS text: "回复1 …" menus, segment counting, pages behind "回复 更多";
- ``phones``   numbers normalized to E.164 (phonenumbers, +86 by default) and masked for logs;
- ``service``  the conversation every gateway shares: duplicates, pages, TD/退订 and the stop list;
- ``kannel``   Kannel's sms-service and dlr-url endpoints, and ``KannelSender`` (sendsms);
- ``cloud``    Aliyun's JSON callbacks and ``AliyunSender`` (approved templates only);
- ``routes``   what ``guidebot serve`` mounts, and ``build_sender`` for the outbox;
- ``settings`` ``GUIDEBOT_SMS_*`` / ``GUIDEBOT_KANNEL_*`` / ``GUIDEBOT_ALIYUN_*``;
- ``cli``      ``guidebot sms send`` and ``guidebot sms kannel-conf``.
"""
