# Runs polyguard-experiment: good options print the CSV header, bad ones exit 2.
execute_process(COMMAND ${EXE} codes --peers 8 --errors 0,2 --trials 5
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^strategy,peers,m,n,d,threshold,stragglers,errors,trials,corrected,detected_uncorrectable,undetected_wrong,max_rel_error,density,shard_nonzeros\ngenpolydot,8,2,2,1,5,0,0,5,5,0,0,")
  message(FATAL_ERROR "good run failed (${rc}):\n${out}\n${err}")
endif()
foreach(bad "--peers;zero" "--strategy;magic" "--errors;1,x" "--m;0")
  execute_process(COMMAND ${EXE} codes ${bad} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR err STREQUAL "")
    message(FATAL_ERROR "bad options '${bad}' gave exit ${rc}, stderr '${err}'")
  endif()
endforeach()
execute_process(COMMAND ${EXE} train RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "unknown experiment gave exit ${rc}")
endif()
# Sizes inside the accepted range whose matrices do not fit: refused with the
# bytes needed, never std::bad_alloc (exit 134).
execute_process(COMMAND ${EXE} codes --rows 100000 --cols 100000
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "A 100000 x 100000 and B 100000 x 8 on 8 peers needs about .* available")
  message(FATAL_ERROR "a trial too large for memory gave exit ${rc}, stderr '${err}'")
endif()
