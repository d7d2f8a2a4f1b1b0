#!/bin/sh
# Stands in for the unit tests when configure found no CMocka.
echo "SKIP: the unit tests need CMocka (apt-get install libcmocka-dev, then ./configure again)"
exit 77
