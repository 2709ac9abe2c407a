#!/bin/sh
echo "hello from the work seed"
