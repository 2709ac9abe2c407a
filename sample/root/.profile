# ~/.profile: executed by Bourne-compatible login shells.
if [ "$BASH" ] && [ -f ~/.bashrc ]; then
  . ~/.bashrc
fi
mesg n 2> /dev/null || true
