import sys

from composer.tools.cli import main

sys.exit(main())
