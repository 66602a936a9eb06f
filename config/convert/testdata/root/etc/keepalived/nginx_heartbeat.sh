#!/bin/bash
# exit 1 when no nginx master process runs, so keepalived gives up the VIP
if [ "$(ps -ef | grep "nginx: master process" | grep -v grep)" == "" ]; then
    exit 1
else
    exit 0
fi
