"""Operations glue: run-log health (``runlog_ops``), the nightly check (``check``), ops
alert delivery (``notify``) and disaster recovery (``restore``). The schedule itself is
``obslib.schedule``; heartbeats are ``obslib.heartbeat``."""
