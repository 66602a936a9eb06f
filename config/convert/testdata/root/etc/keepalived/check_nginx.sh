#!/bin/bash
# Restart nginx once; if it stays down, stop keepalived so the VIP moves.
A=`ps -C nginx --no-header | wc -l`
if [ $A -eq 0 ]; then
    /usr/sbin/nginx
    sleep 2
    if [ `ps -C nginx --no-header | wc -l` -eq 0 ]; then
        killall keepalived
    fi
fi
