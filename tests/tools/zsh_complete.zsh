# Prints, one per line, the completions zsh offers for a command line, with the completion
# functions of DIR (completions/). Used by cli_test.
# usage: zsh -f zsh_complete.zsh DIR 'wec sldc de'
# An interactive zsh runs in a pseudo-terminal (zpty); compadd is wrapped to print what the
# completion system adds, then TAB is typed after the command line.
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
# The marker is split in the source so that the echoed definition does not contain it.
zpty -w z 'compadd () { local -a __m; builtin compadd -O __m "$@"; (( $#__m )) && print -l -- "<m""atch>"${^__m}; builtin compadd "$@"; }'
zpty -w z "zstyle ':completion:*' menu no"
zpty -w z "$2"$'\t'
zpty -w z $'\C-u''print -- "<e""nd>"'
local out="" line
while (( SECONDS < 10 )); do
  if zpty -r -t z line 2>/dev/null; then
    out+="$line"
    [[ $out == *"<end>"* ]] && break
  else
    sleep 0.05
  fi
done
zpty -d z
print -r -- "$out" | tr -d '\r' | grep -o '<match>[^<[:cntrl:]]*' | sed 's/^<match>//' | sort -u
