"""Security models shared by controller and broker: ACL matching (``acl``) and SCRAM
credentials (``scram``). Pure: no I/O, no clock."""
